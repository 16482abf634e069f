"""The pack stage: a policy pack read, checked and rendered (docs/policy-packs.md)."""
