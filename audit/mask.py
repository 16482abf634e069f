"""Masking of personal data before it reaches any output, log or GX result.

Masked forms keep just enough to tell values apart by eye (first letter, last
digits, top-level domain) and nothing that identifies a person.
"""

from __future__ import annotations

import re

from audit.schema import ADDRESS, BODY, EMAIL, IP, NAME, PHONE

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+[.][A-Za-z]{2,}")
PHONE_RE = re.compile(r"(\+[0-9]{1,3}[ .-]?)?\(?[0-9]{3}\)?[ .-]?[0-9]{3}[ .-][0-9]{4}")
IPV4_RE = re.compile(r"\b([0-9]{1,3}[.]){3}[0-9]{1,3}\b")
IPV6_RE = re.compile(r"\b(?:[0-9A-Fa-f]{1,4}:){2,7}[0-9A-Fa-f]{1,4}\b")


def mask_email(value: str) -> str:
    local, _, domain = value.strip().partition("@")
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{local[:1]}***@***.{tld}" if tld else f"{local[:1]}***@***"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    return "***" + digits[-2:] if len(digits) >= 2 else "***"


def mask_ip(value: str) -> str:
    value = value.strip()
    if "." in value:
        return value.split(".")[0] + ".*.*.*"
    return value.split(":")[0] + ":****"


def mask_body(value: str) -> str:
    return f"[{len(value)} characters withheld]"


def mask_value(kind: str | None, value) -> str | None:
    """Mask one value of a column whose personal-data kind is `kind`."""
    if value is None:
        return None
    text = str(value)
    if kind == EMAIL:
        return mask_email(text)
    if kind == PHONE:
        return mask_phone(text)
    if kind == IP:
        return mask_ip(text)
    if kind in (BODY, NAME, ADDRESS):
        return mask_body(text)
    return scrub(text)


def scrub(text: str) -> str:
    """Mask every e-mail address, phone number and IP address inside free text."""
    text = EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    text = IPV4_RE.sub(lambda m: mask_ip(m.group(0)), text)
    text = IPV6_RE.sub(lambda m: mask_ip(m.group(0)), text)
    return PHONE_RE.sub(lambda m: mask_phone(m.group(0)), text)


def scrub_sql(expr: str) -> str:
    """DuckDB SQL that masks e-mail addresses, IPv4 addresses and phone numbers inside `expr`.

    The safety net for identifiers and details that reach outputs: a key that
    happens to be an e-mail address is shown as `j***@***.com`.
    """
    email = r"regexp_replace({x}, '([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+[.]([A-Za-z]{{2,}})', '\1***@***.\2', 'g')"
    ipv4 = r"regexp_replace({x}, '\b([0-9]{{1,3}})[.][0-9]{{1,3}}[.][0-9]{{1,3}}[.][0-9]{{1,3}}\b', '\1.*.*.*', 'g')"
    phone = r"regexp_replace({x}, '(\+[0-9]{{1,3}}[ .-]?)?\(?[0-9]{{3}}\)?[ .-]?[0-9]{{3}}[ .-][0-9]{{2}}([0-9]{{2}})', '***\2', 'g')"
    return phone.format(x=ipv4.format(x=email.format(x=expr)))
