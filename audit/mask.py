"""What is personal data, and how it is masked before it reaches any output.

The one definition: violations.csv/.parquet, findings.json and the ledger
(through `mask_id`/`scrub`, run as DuckDB functions by audit/outputs/findings.py), the
notebooks and the report (`mask_value`, audit/report/data.py), and every line
the CLI prints (`for_terminal`, `bad_value`).

Personal data found in free text: e-mail addresses (quoted and non-ASCII local
parts and domains included), IPv4 and IPv6 addresses, and phone numbers, which
the `phonenumbers` library (Google's libphonenumber) recognises, national US
and international (+CC) formats. Masked forms keep just enough to tell values
apart by eye and nothing that identifies a person: `j***@***.com`, `***58`,
`10.*.*.*`, `2001:****`.

Every pattern here is linear in the length of its input: no nested or
overlapping quantifiers, possessive runs, and a lookbehind at the start of each
pattern, so that a failed match is never retried from inside the same run.
Work that is not linear (libphonenumber) only ever sees short windows, and at
most PHONE_CHECKS of them per value; longer or further candidates are masked
without asking it.

Identifiers (record, customer and waiver ids) are masked with `mask_id`: an
id without personal data is kept exactly; one with personal data, or too long
to show, becomes its masked form followed by a keyed hash of the whole raw
value (`ACC-***00~3f2a9c1b0d4e`), so two different ids never share a masked
form and the ledger, diffs and waivers keep telling them apart.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import ipaddress
import os
import re
import secrets
from pathlib import Path

import phonenumbers

from audit.pack.contract import ADDRESS, BODY, EMAIL, IP, NAME, PHONE

# ---------------------------------------------------------------------------- limits

ID_SHOWN = 64          # an id longer than this (after masking) is cut and hashed
ID_CUT = 40            # ... to this many characters, then "…~<hash>"
VALUE_SHOWN = 40       # characters of a bad value shown in a message
LINE_SHOWN = 1000      # characters of one message line
HASH_HEX = 12          # hex digits of the keyed hash beside a masked id (48 bits)
MARGIN = 256           # a value is cut this far past what is shown before it is scrubbed: longer than
                       # any e-mail address (254), phone run or IP, so one straddling the cut is still found
PHONE_MIN_DIGITS = 5   # fewer digits than this are never a phone number (+CC and 4 digits at least)
PHONE_RUN = 64         # longest run of digits and separators shown to libphonenumber
PHONE_CHECKS = 32      # libphonenumber calls per value, plus one per PHONE_RUN characters of it;
                       # later candidates are masked unasked
PHONE_REGION = "US"    # how numbers without a +country code are read

# ---------------------------------------------------------------------------- patterns

# Characters of an unquoted local part or of a domain label: anything but
# space, '@', quotes, brackets and the separators of address lists.
_ATOM = r"""[^\s@"<>()\[\],;:]"""
_LABEL = r"""[^\s@"<>()\[\],;:.]"""
EMAIL_RE = re.compile(
    rf"""(?<!{_ATOM})(?:"[^"\r\n]{{1,64}}"|{_ATOM}++)@{_LABEL}++(?:[.]{_LABEL}++)++""")
IPV4_RE = re.compile(r"(?<![0-9.])[0-9]{1,3}(?:[.][0-9]{1,3}){3}(?![.]?[0-9])")
# A run of hex digits, dots and colons holding a colon; ipaddress decides.
IPV6_RUN_RE = re.compile(r"(?<![0-9A-Fa-f:.])[0-9A-Fa-f.]*+:[0-9A-Fa-f:.]*+")
# A run of digits (any script) and the separators of written phone numbers,
# with PHONE_MIN_DIGITS digits at least.
PHONE_RUN_RE = re.compile(
    rf"(?<![\d+(A-Za-z])[+(]?\d(?:[ ().\-/]*+\d){{{PHONE_MIN_DIGITS - 1}}}[\d ().\-/]*+")
_RUN_TAIL_RE = re.compile(r"[ ().\-/]++$")
_GROUPED_RE = re.compile(r"\d[ ().\-/]++\d")  # a separator between two digits: written as a phone number
_ISO_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?: [0-9]{2})?")
_DIGIT_RE = re.compile(r"\d")

# The cheap test DuckDB runs (RE2) before calling `mask_id`/`scrub` on a value:
# true for every value those functions would change, and for more. It is the
# union of what each pattern above needs: '@' (e-mail), ':' (IPv6), digit '.'
# digit (IPv4), PHONE_MIN_DIGITS digits in one run (phone); ids longer than
# ID_SHOWN are tested by length. tests/test_masking.py checks the claim.
PREFILTER_RE2 = (r"@|:|[0-9][.][0-9]|\p{Nd}(?:[ ().\-/+]*\p{Nd})"
                 f"{{{PHONE_MIN_DIGITS - 1}}}")


def mask_email(value: str) -> str:
    local, _, domain = value.strip().rpartition("@")
    first = local.strip('"')[:1]
    tld = domain.rsplit(".", 1)[-1] if "." in domain else ""
    return f"{first}***@***.{tld}" if tld else f"{first}***@***"


def mask_phone(value: str) -> str:
    digits = _DIGIT_RE.findall(value)
    return "***" + "".join(digits[-2:]) if len(digits) >= 2 else "***"


def mask_ip(value: str) -> str:
    value = value.strip()
    if ":" in value:
        head, _, tail = value.rpartition(":")
        if "." in tail:  # an IPv4 address inside IPv6 (::ffff:1.2.3.4)
            return f"{head}:{tail.split('.')[0]}.*.*.*"
        return value.split(":")[0] + ":****" if not value.startswith(":") else "::****"
    return value.split(".")[0] + ".*.*.*"


def mask_body(value: str) -> str:
    return f"[{len(value)} characters withheld]"


def mask_value(kind: str | None, value) -> str | None:
    """Mask one value of a column whose personal-data kind is `kind` (None: free text, scrubbed)."""
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


# ---------------------------------------------------------------------------- free text


def scrub(text: str) -> str:
    """Mask every e-mail address, IP address and phone number inside free text (linear time)."""
    if "@" in text:
        text = EMAIL_RE.sub(lambda m: mask_email(m.group(0)), text)
    if ":" in text:
        text = IPV6_RUN_RE.sub(_ipv6, text)
    if "." in text:
        text = IPV4_RE.sub(lambda m: mask_ip(m.group(0)), text)
    checks = [PHONE_CHECKS + len(text) // PHONE_RUN]
    return PHONE_RUN_RE.sub(lambda m: _phones(m, checks), text)


def _ipv6(m: re.Match) -> str:
    run = m.group(0)
    for start in (0, run.find(":") + 1):  # also after a leading word of hex letters ("cafe:2001:db8::1")
        cand = run[start:].rstrip(".")
        if cand.startswith(":") and not cand.startswith("::"):
            cand = cand[1:]
        if 2 < len(cand) <= 45 and any(c not in ":." for c in cand):
            try:
                if ipaddress.ip_address(cand).version == 6:
                    i = run.index(cand, start)
                    return run[:i] + mask_ip(cand) + run[i + len(cand):]
            except ValueError:
                pass
    return run


def _phones(m: re.Match, checks: list[int]) -> str:
    """Mask the phone numbers in one run of digits and separators."""
    run = m.group(0)
    tail = _RUN_TAIL_RE.search(run)
    core = run[:tail.start()] if tail else run
    rest = run[len(core):]
    if _ISO_DATE_RE.fullmatch(core) or _glued(m.string, m.start(), m.start() + len(core), core):
        return run
    if len(core) > PHONE_RUN or checks[0] <= 0:
        return mask_phone(core) + rest  # too long or too many to ask about: masked whole
    checks[0] -= 1
    # The characters around the run let libphonenumber apply its own rules: digits
    # glued to a letter (a hash, `x4155550100`) or followed by `:59` (a timestamp) are not a number.
    before = m.string[max(m.start() - 1, 0):m.start()]
    after = m.string[m.end() - len(rest):m.end() - len(rest) + 6]
    spans = _phone_spans(before, core, after)
    if not spans:
        return run
    out, at = [], 0
    for start, end in spans:
        out += [core[at:start], mask_phone(core[start:end])]
        at = end
    return "".join(out) + core[at:] + rest


def _glued(text: str, start: int, end: int, core: str) -> bool:
    """Bare digits glued to a Latin letter (a hash, a uuid, `20261130T2356`): never a number to libphonenumber."""
    before, after = text[start - 1:start] if start else "", text[end:end + 1]
    return core.isdigit() and (before.isascii() and before.isalpha() or after.isascii() and after.isalpha())


@functools.lru_cache(maxsize=4096)
def _phone_spans(before: str, core: str, after: str) -> tuple[tuple[int, int], ...]:
    """Where libphonenumber finds numbers in `core` (offsets into `core`).

    Digits written as a phone number (grouped: a separator between digits,
    `555-123-4567`) need only be possible numbers, so made-up and unassigned ones
    are masked too; bare digits (`1500000`, `(1234567 rows)`, an id's serial) must
    be valid ones, or every count would be a phone.
    """
    grouped = _GROUPED_RE.search(core) is not None
    leniency = phonenumbers.Leniency.POSSIBLE if grouped else phonenumbers.Leniency.VALID
    found = phonenumbers.PhoneNumberMatcher(before + core + after, PHONE_REGION, leniency=leniency)
    n = len(before)
    return tuple((max(p.start - n, 0), min(p.end - n, len(core))) for p in found
                 if p.end > n and p.start < n + len(core))


# ---------------------------------------------------------------------------- identifiers


def mask_id(value) -> str | None:
    """An id as it may be shown: unchanged without personal data, else masked with a keyed hash.

    `ACC-415-555-0100` -> `ACC-***00~3f2a9c1b0d4e`; `ACC-212-555-0100` gets
    another hash. An id longer than ID_SHOWN is cut and hashed the same way.
    """
    if value is None:
        return None
    text = str(value)
    shown = scrub(text[:ID_SHOWN + MARGIN])  # what lies past the margin is never shown
    if shown == text and len(text) <= ID_SHOWN:
        return text
    if len(shown) > ID_SHOWN or len(text) > ID_SHOWN + MARGIN:
        shown = shown[:ID_CUT] + "…"
    return f"{shown}~{keyed_hash(text)}"


def keyed_hash(text: str) -> str:
    """HMAC-SHA256 of `text` under the machine's masking key, HASH_HEX hex digits.

    Keyed, because an unkeyed hash of a phone number or e-mail address is
    reversed by trying every candidate (10^10 US numbers hash in seconds).
    """
    return hmac.new(mask_key(), text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:HASH_HEX]


def keyed_hash_sql(expr: str) -> str:
    """DuckDB SQL: HASH_HEX hex digits of SHA-256 over the masking key and the text `expr`.

    For columns of millions of values (the record keys of run.duckdb's
    populations), where Python row by row would cost minutes. Keyed like
    `keyed_hash`, for the same reason; the key is only ever in the query text.
    """
    return f"left(sha256('{mask_key().hex()}' || {expr}), {HASH_HEX})"


KEY_ENV = "AUDIT_MASK_KEY"


@functools.lru_cache(maxsize=1)
def mask_key() -> bytes:
    """The masking key: $AUDIT_MASK_KEY, else 32 random bytes kept in the user's config folder.

    The file (`${XDG_CONFIG_HOME:-~/.config}/audit-workbench/mask.key`, mode
    0600) is created once, so masked ids stay the same from run to run on one
    machine. When it can be neither read nor created, this process uses a key
    of its own: ids stay distinct and unguessable, but differ from other runs'.
    """
    env = os.environ.get(KEY_ENV)
    if env:
        return env.encode("utf-8", "surrogatepass")
    path = key_path()
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
        try:
            os.link(tmp, path)  # atomic: a concurrent first run's key wins, and both use it
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    return secrets.token_bytes(32)


def key_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "audit-workbench" / "mask.key"


# ---------------------------------------------------------------------------- messages

# Tokens of a bad value that may be shown as they are: numbers, dates, times
# and words that parse as neither (the value is bad because of what it is).
_HARMLESS_RE = re.compile(
    r"[+-]?[0-9]{1,20}(?:[.,][0-9]{1,20})?(?:[eE][+-]?[0-9]{1,3})?"
    r"|[0-9]{1,4}[-/.][0-9]{1,2}[-/.][0-9]{1,4}(?:[T ][0-9]{1,2}(?::[0-9]{1,2}){0,2}(?:[.][0-9]{1,9})?)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
    r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?"
    r"|(?i:true|false|yes|no|[tfyn]|null|none|nan|[+-]?inf(?:inity)?|epoch|now|today|tomorrow|yesterday|"
    r"allballs|n/?a|-+)")


def bad_value(kind: str | None, value) -> str | None:
    """A bad value of a column of personal-data kind `kind`, fit for a message.

    Cut to VALUE_SHOWN characters before anything else; masked by its kind when
    personal; otherwise shown as it is only when it is a number, date, time or
    such a word without a phone number in it, else by its shape (letters as
    x/X, digits as 9): `John Smith, 10 Downing St` -> `Xxxx Xxxxx, 99 Xxxxxxx Xx`.
    """
    if value is None:
        return None
    text = str(value)
    if kind in (BODY, NAME, ADDRESS):
        return mask_body(text)
    head = text[:VALUE_SHOWN]
    if kind in (EMAIL, PHONE, IP):
        shown = mask_value(kind, head)
    elif _HARMLESS_RE.fullmatch(head.strip()) and scrub(head) == head:
        shown = head
    else:
        shown = shape(head)
    return shown + (f"… ({len(text)} characters)" if len(text) > VALUE_SHOWN else "")


def shape(text: str) -> str:
    """Letters as x/X, digits as 9; everything else kept."""
    return "".join("9" if c.isdigit() else ("X" if c.isupper() else "x") if c.isalpha() else c for c in text)


def scrub_strings(value):
    """Every string inside a JSON-like value scrubbed (keys and numbers kept, so the structure stays valid)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, list):
        return [scrub_strings(v) for v in value]
    if isinstance(value, dict):
        return {k: scrub_strings(v) for k, v in value.items()}
    return value


def for_terminal(line: str, limit: int = LINE_SHOWN) -> str:
    """One message line as the CLI prints it: personal data masked, cut to `limit`, control characters visible.

    Cut (MARGIN past `limit`) before scrubbing, so a huge message costs little; an ESC becomes `\\x1b`
    and a newline `\\n`, so nothing the data holds can drive the terminal.
    """
    text = scrub(str(line)[:limit + MARGIN])
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return text if len(text) <= limit else text[:limit] + "…"
