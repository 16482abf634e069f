"""The evidence package of a run: one byte-deterministic zip anyone can re-hash, and its offline check.

What it holds (docs/evidence.md): every file of the run folder (`run/`:
findings.json, violations.csv/.parquet, the GX results with each control's SQL,
the report and notebooks when present), the policy pack's files (`pack/`:
the run folder's copy of its pack, or for a run of an earlier version the pack
at its path, refused if it changed since the run), the waivers and attestations
files when the run recorded them (`waivers/`, `attestations/`), the sign-off
(`run/signoff.json`, audit/ledger/signoff.py) once the run is signed off, and facts as JSON (`evidence/`): the export's files
with their SHA-256 and the row counts the run read (re-hashed from the export
when it is still there; never its data), the pack, tool and dependency
versions, the ledger head. MANIFEST.json lists every member with its SHA-256
and size, and a digest over that list; MANIFEST.sig, an Ed25519 signature of
MANIFEST.json, when the package is signed.

Byte-deterministic: members in path order, fixed timestamps (1980-01-01, the
zip epoch), fixed permissions (0644), no extra fields, no comment, and nothing
that depends on when the package was made: two packages of one run (same
machine, same ledger head) are the same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from audit import __version__
from audit.errors import AuditError, OutputError, UsageError, first_line
from audit.outputs.findings import read_findings
from audit.outputs.run_folder import MARKER, PACK_DIR, TOOL, run_pack

FORMAT = "audit-evidence/1"
MANIFEST = "MANIFEST.json"
SIGNATURE = "MANIFEST.sig"
EPOCH = (1980, 1, 1, 0, 0, 0)
MODE = stat.S_IFREG | 0o644
CHUNK = 1 << 20
KEY_NAME = "audit-evidence"


class EvidenceError(AuditError):
    """A package that fails verification: names the member."""


# --------------------------------------------------------------------------- building


def _sha256_file(path: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _json(value) -> bytes:
    return (json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def _run_files(run_dir: Path) -> dict[str, Path]:
    """Every regular file of the run folder, by its path in the package; the marker and hidden files left out.

    The run's copy of its pack (`pack/`) is not repeated under `run/`: it is the package's `pack/` (`_pack`).
    """
    out = {}
    for folder, dirs, files in os.walk(run_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(folder) == run_dir and d == PACK_DIR))
        for name in files:
            path = Path(folder) / name
            if name.startswith(".") or name == MARKER or not stat.S_ISREG(path.lstat().st_mode):
                continue
            out["run/" + path.relative_to(run_dir).as_posix()] = path
    return out


def _pack(run: dict, run_dir: Path) -> tuple[dict[str, Path], dict, object]:
    """The pack's files by package path, its facts, and the pack itself.

    From the run folder's copy of its pack (`pack/`, audit/outputs/run_folder.py) when it has one, whose
    digest must be the run's; else (a run of an earlier version) from the pack's path, refused if it changed.
    """
    from audit.pack.loader import load_pack

    policy = run.get("policy") or {}
    path = Path(policy.get("path") or "")
    pack, source = run_pack(run_dir), run_dir / PACK_DIR
    if pack is None:
        source = path
        if not policy.get("path") or not path.is_dir():
            raise UsageError(f"{path}: the run's policy pack is not there any more; the package needs it")
        pack = load_pack(path)
    if pack.digest != policy.get("sha256"):
        raise UsageError(f"{source}: the policy pack changed since the run (sha256 {pack.digest[:12]}…, "
                         f"the run recorded {str(policy.get('sha256'))[:12]}…); nothing was written")
    root = Path(pack.path).resolve()
    files = {"pack/" + Path(f).resolve().relative_to(root).as_posix(): Path(f) for f in pack.files}
    return files, {"name": policy.get("name"), "path": str(path), "sha256": pack.digest}, pack


def _mapping(run: dict) -> dict[str, Path]:
    """The run's mapping file (findings.json run.mapping) as `mapping/<name>`; refused if it changed since the run."""
    recorded = run.get("mapping")
    if not recorded:
        return {}
    path = Path(recorded["path"])
    if not path.is_file() or _sha256_file(path)[0] != recorded.get("sha256"):
        raise UsageError(f"{path}: the run's mapping is not there any more or changed since the run; "
                         f"nothing was written")
    return {"mapping/" + path.name: path}


def _export(run: dict, pack) -> dict:
    """The export's files with SHA-256 and size, and the row count of each table, checked against the run."""
    from audit.read import export

    root = Path(run["exports"])
    facts = {"path": str(root), "input_fingerprint": run["input_fingerprint"], "manifest": run.get("manifest"),
             "row_counts": run.get("row_counts", {})}
    if not root.is_dir():
        return {**facts, "state": "gone: the export is no longer there; its files cannot be re-hashed", "files": []}
    ex = export.discover(root, pack.contract)
    pairs = export.file_digests(ex)
    digests = dict(pairs)
    table_of = {rel: table for table, src in ex.sources.items() for rel, _ in src.files}
    files = []
    for rel, real in ex.files_read():
        try:
            size = os.stat(real).st_size
        except OSError:
            size = None
        files.append({"path": rel, "table": table_of.get(rel), "sha256": digests[rel], "size": size})
    now = export.digests_fingerprint(pairs)
    same = now == run["input_fingerprint"]
    state = ("verified: these are the files the run read, byte for byte" if same else
             f"changed: the export differs from what the run read (fingerprint now {now})")
    return {**facts, "state": state, "files": files}


def _versions() -> dict:
    """The tool's version and the installed version of each package it pins (importlib.metadata)."""
    packages = {}
    try:
        required = metadata.requires(TOOL) or []
    except metadata.PackageNotFoundError:
        required = []
    for spec in required:
        if "extra ==" in spec:
            continue
        name = spec.split(";")[0].split("==")[0].strip()
        try:
            packages[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            packages[name] = None
    return {"tool": TOOL, "version": __version__, "python": sys.version.split()[0], "packages": packages}


def _ledger(ledger: Path, run_id: str) -> dict:
    """The ledger's head after verifying its chain, and this run's record in it."""
    from audit.ledger.chain import run_rows, verify

    got = verify(ledger)
    rows = [r for r in run_rows(ledger) if r["run_id"] == run_id]
    mine = {"seq": rows[-1]["seq"], "record_hash": rows[-1]["record_hash"]} if rows else None
    return {"path": str(ledger), "runs": got.runs, "head": got.head, "this_run": mine}


def _recorded_file(run: dict, key: str) -> tuple[dict[str, Path], dict | None]:
    """The waivers or attestations file the run recorded (run.<key>: file, sha256) as `<key>/<name>`, and its facts.

    A file gone since the run is said so; one changed since the run is refused.
    """
    recorded = run.get(key)
    if not recorded or not recorded.get("file"):
        return {}, None
    path = Path(recorded["file"])
    facts = {"file": str(path), "sha256": recorded.get("sha256")}
    if not path.is_file():
        return {}, {**facts, "state": f"gone: the {key} file is no longer there"}
    if _sha256_file(path)[0] != recorded.get("sha256"):
        raise UsageError(f"{path}: the {key} file changed since the run; nothing was written")
    return {f"{key}/{path.name}": path}, {**facts, "state": "included"}


def digest_of(members: list[dict]) -> str:
    """The package's digest: SHA-256 of `sha256sum` lines (`<sha256>  <path>\\n`) of the members, in path order."""
    lines = "".join(f"{m['sha256']}  {m['path']}\n" for m in sorted(members, key=lambda m: m["path"]))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def build(run_dir: str | Path, out: str | Path, ledger: str | Path | None = None,
          key: str | Path | None = None) -> dict:
    """Write the evidence package of `run_dir` to `out` (temporary file beside it, then rename); its manifest."""
    run_dir, out = Path(run_dir), Path(out)
    if not (run_dir / "findings.json").is_file():
        raise UsageError(f"{run_dir}: not a run folder (no findings.json)")
    try:
        run = read_findings(run_dir)["run"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{run_dir}/findings.json: cannot be read ({exc})") from None
    o = out.resolve()
    for inside, what in ((run_dir, "the run folder"), (Path(run["exports"]), "the export folder")):
        if inside.resolve() == o or inside.resolve() in o.parents:
            raise UsageError(f"{out}: must not be inside {what} {inside}")
    signer = _private_key(Path(key)) if key else None
    files = _run_files(run_dir)
    pack_files, pack_facts, pack = _pack(run, run_dir)
    files.update(pack_files)
    recorded = {key: _recorded_file(run, key) for key in ("waivers", "attestations")}
    for side_files, _ in recorded.values():
        files.update(side_files)
    files.update(_mapping(run))
    facts = {"evidence/export.json": _export(run, pack), "evidence/pack.json": pack_facts,
             "evidence/versions.json": _versions()}
    for key, (_, side_facts) in recorded.items():
        if side_facts:
            facts[f"evidence/{key}.json"] = side_facts
    if ledger:
        facts["evidence/ledger.json"] = _ledger(Path(ledger), run["run_id"])
    blobs = {name: _json(value) for name, value in facts.items()}
    members = []
    for name, path in files.items():
        sha, size = _sha256_file(path)
        members.append({"path": name, "sha256": sha, "size": size})
    members += [{"path": n, "sha256": hashlib.sha256(b).hexdigest(), "size": len(b)} for n, b in blobs.items()]
    members.sort(key=lambda m: m["path"])
    manifest = {"format": FORMAT, "run_id": run["run_id"], "as_of": run["as_of"], "members": members,
                "digest": digest_of(members)}
    blobs[MANIFEST] = _json(manifest)
    if signer is not None:
        blobs[SIGNATURE] = _json(_signature(signer, blobs[MANIFEST]))
    _write_zip(out, files, blobs, {m["path"]: m["sha256"] for m in members})
    return manifest


def _write_zip(out: Path, files: dict[str, Path], blobs: dict[str, bytes], expected: dict[str, str]) -> None:
    tmp = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
        os.close(fd)
        with zipfile.ZipFile(tmp, "w") as zf:
            for name in sorted([*files, *blobs]):
                info = zipfile.ZipInfo(name, date_time=EPOCH)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = MODE << 16
                info.create_system = 3
                if name in blobs:
                    info.file_size = len(blobs[name])
                    zf.writestr(info, blobs[name])
                    continue
                info.file_size = files[name].stat().st_size
                digest = hashlib.sha256()
                with open(files[name], "rb") as src, zf.open(info, "w") as dst:
                    while chunk := src.read(CHUNK):
                        digest.update(chunk)
                        dst.write(chunk)
                if digest.hexdigest() != expected[name]:
                    raise UsageError(f"{files[name]}: changed while the package was written; nothing was written")
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
        tmp = None
    except OSError as exc:
        raise OutputError(f"{out}: the package could not be written ({exc.strerror or exc})") from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------- signing


def _private_key(path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable unencrypted PEM private key ({_reason(exc)})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"{path}: not an Ed25519 private key (audit evidence keygen writes one)")
    return key


def _public_key(path: Path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{path}: not a readable PEM public key ({_reason(exc)})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path}: not an Ed25519 public key")
    return key


def _raw_public(key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _signature(key, manifest: bytes) -> dict:
    """Ed25519 over MANIFEST.json's bytes (deterministic: the same manifest and key, the same signature)."""
    public = _raw_public(key.public_key())
    return {"algorithm": "Ed25519", "signed": MANIFEST,
            "public_key_sha256": hashlib.sha256(public).hexdigest(),
            "signature": base64.b64encode(key.sign(manifest)).decode("ascii")}


def keygen(folder: str | Path) -> tuple[Path, Path]:
    """Write a new Ed25519 key pair into `folder`: the private key 0600, the public key 0644; never overwrite."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (Encoding, NoEncryption, PrivateFormat,
                                                              PublicFormat)

    folder = Path(folder)
    private, public = folder / f"{KEY_NAME}.key", folder / f"{KEY_NAME}.pub"
    for path in (private, public):
        if os.path.lexists(path):
            raise UsageError(f"{path}: exists; keys are never overwritten")
    key = Ed25519PrivateKey.generate()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
        os.chmod(private, 0o600)
        public.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    except OSError as exc:
        raise OutputError(f"{folder}: the key pair could not be written ({exc.strerror or exc})") from None
    return private, public


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Verified:
    run_id: str
    members: int
    digest: str
    signature: str  # "checked", "not checked (...)" or "none"


def verify(package: str | Path, public_key: str | Path | None = None) -> Verified:
    """Check a package offline; raise EvidenceError naming the first member that does not match its manifest."""
    package = Path(package)
    try:
        zf = zipfile.ZipFile(package)
    except (OSError, zipfile.BadZipFile) as exc:
        raise EvidenceError(f"{package}: not a readable zip ({_reason(exc)})") from None
    with zf:
        raw = _read_member(zf, package, MANIFEST)
        try:
            manifest = json.loads(raw)
            members = {m["path"]: m for m in manifest["members"]}
            digest, run_id = manifest["digest"], manifest["run_id"]
        except (ValueError, KeyError, TypeError) as exc:
            raise EvidenceError(f"{package}: {MANIFEST}: not a package manifest ({_reason(exc)})") from None
        names = [i.filename for i in zf.infolist()]
        if len(names) != len(set(names)):
            dup = next(n for n in names if names.count(n) > 1)
            raise EvidenceError(f"{package}: {dup}: stored twice")
        for name in names:
            if name not in members and name not in (MANIFEST, SIGNATURE):
                raise EvidenceError(f"{package}: {name}: not listed in {MANIFEST} (added)")
        for name, m in sorted(members.items()):
            if name not in names:
                raise EvidenceError(f"{package}: {name}: listed in {MANIFEST} but missing (removed)")
            sha, size = _hash_member(zf, package, name)
            if sha != m.get("sha256") or size != m.get("size"):
                raise EvidenceError(f"{package}: {name}: SHA-256 does not match {MANIFEST} (changed)")
        if digest_of(list(members.values())) != digest:
            raise EvidenceError(f"{package}: {MANIFEST}: its digest does not match its member list (changed)")
        signature = _check_signature(zf, package, raw, names, public_key)
    return Verified(run_id, len(members), digest, signature)


def _check_signature(zf, package: Path, manifest: bytes, names: list[str], public_key) -> str:
    if SIGNATURE not in names:
        if public_key:
            raise EvidenceError(f"{package}: {SIGNATURE}: missing; the package is not signed")
        return "none"
    try:
        sig = json.loads(_read_member(zf, package, SIGNATURE))
        signature = base64.b64decode(sig["signature"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise EvidenceError(f"{package}: {SIGNATURE}: not a signature ({_reason(exc)})") from None
    if not public_key:
        return f"not checked (give --public-key; signed by key sha256 {str(sig.get('public_key_sha256'))[:16]}…)"
    from cryptography.exceptions import InvalidSignature

    key = _public_key(Path(public_key))
    try:
        key.verify(signature, manifest)
    except InvalidSignature:
        raise EvidenceError(f"{package}: {SIGNATURE}: the signature does not match {MANIFEST} with the key "
                            f"{public_key} (wrong key, or the package was changed)") from None
    return f"checked with {public_key}"


def _read_member(zf: zipfile.ZipFile, package: Path, name: str) -> bytes:
    try:
        return zf.read(name)
    except KeyError:
        raise EvidenceError(f"{package}: {name}: missing") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise EvidenceError(f"{package}: {name}: damaged ({_reason(exc)})") from None


def _hash_member(zf: zipfile.ZipFile, package: Path, name: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    try:
        with zf.open(name) as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise EvidenceError(f"{package}: {name}: damaged, it was changed ({_reason(exc)})") from None
    return digest.hexdigest(), size


def _reason(exc: BaseException) -> str:
    return first_line(exc)
