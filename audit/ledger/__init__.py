"""The run ledger (a hash chain of every run) and the periods of scheduled audits."""
