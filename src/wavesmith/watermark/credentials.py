"""C2PA Content Credentials for the files wavesmith writes (through ``c2pa-python``).

The manifest says the audio is ``trainedAlgorithmicMedia`` (IPTC digital source type),
names the generator (wavesmith and its version), the model and checkpoint hash, and the
creation time. The signing key and certificate chain come from, in order:

1. ``WAVESMITH_C2PA_KEY`` and ``WAVESMITH_C2PA_CERT`` (PEM files);
2. ``c2pa/key.pem`` and ``c2pa/cert.pem`` in the configuration directory
   (``WAVESMITH_CONFIG_DIR``, default ``~/.config/wavesmith``);
3. otherwise a local pair made on first use (an EC P-256 leaf certificate issued by a
   small local CA, since C2PA refuses self-signed signing certificates), written to that
   directory and announced on stderr. Validators report such manifests as signed by an
   untrusted certificate: they prove integrity, not identity.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from wavesmith import __version__
from wavesmith.errors import WavesmithError, one_line
from wavesmith.files import atomic_path

SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME_TYPES = {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".m4a": "audio/mp4"}


def config_dir() -> Path:
    """The user's wavesmith configuration directory."""
    return Path(os.environ.get("WAVESMITH_CONFIG_DIR") or Path.home() / ".config" / "wavesmith")


def _make_local_pair(folder: Path) -> tuple[Path, Path]:
    """Create a local CA and a leaf signing certificate (EC P-256, ten years)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wavesmith local CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wavesmith (local, untrusted)")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wavesmith local signer"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wavesmith (local, untrusted)")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name)
        .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    pem = serialization.Encoding.PEM
    key_bytes = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key_bytes)
    cert_path.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    return key_path, cert_path


def signing_material() -> tuple[bytes, bytes]:
    """``(private key PEM, certificate chain PEM)`` from the configuration, made on first use."""
    key_env, cert_env = os.environ.get("WAVESMITH_C2PA_KEY"), os.environ.get("WAVESMITH_C2PA_CERT")
    if key_env or cert_env:
        if not (key_env and cert_env):
            raise WavesmithError("set both WAVESMITH_C2PA_KEY and WAVESMITH_C2PA_CERT, or neither")
        key_path, cert_path = Path(key_env), Path(cert_env)
    else:
        folder = config_dir() / "c2pa"
        key_path, cert_path = folder / "key.pem", folder / "cert.pem"
        if not (key_path.exists() and cert_path.exists()):
            key_path, cert_path = _make_local_pair(folder)
            print(f"wavesmith: created a local C2PA signing key and certificate in {folder} "
                  "(untrusted; set WAVESMITH_C2PA_KEY/WAVESMITH_C2PA_CERT to use your own)", file=sys.stderr)
    try:
        return key_path.read_bytes(), cert_path.read_bytes()
    except OSError as e:
        raise WavesmithError(f"cannot read the C2PA key or certificate: {e}") from None


def _manifest(model: str | None, checkpoint_hash: str | None, title: str,
              assertions: dict[str, dict] | None = None) -> dict:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    generator = {"name": "wavesmith", "version": __version__}
    action = {
        "action": "c2pa.created",
        "digitalSourceType": SOURCE_TYPE,
        "softwareAgent": generator,
        "when": now,
        "parameters": {"model": model, "checkpoint_hash": checkpoint_hash},
    }
    return {
        "claim_generator_info": [generator],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions.v2", "data": {"actions": [action]}},
            {
                "label": "org.wavesmith.generation",
                "data": {"generator": f"wavesmith {__version__}", "model": model,
                         "checkpoint_hash": checkpoint_hash, "created": now},
            },
            *({"label": label, "data": data} for label, data in (assertions or {}).items()),
        ],
    }


def sign_file(
    path: str | os.PathLike,
    *,
    model: str | None = None,
    checkpoint_hash: str | None = None,
    title: str | None = None,
    assertions: dict[str, dict] | None = None,
) -> dict:
    """Write signed Content Credentials into ``path`` (temporary file + rename).

    ``title`` names the asset in the manifest (default: the file's name). ``assertions``
    adds assertions by label (``{"org.wavesmith.voice": {...}}``: a cloned voice's
    consent statement and reference hashes), beside the generation one.
    Returns ``{"signed": bool, "reason": str | None}``; an unsupported format or a signing
    failure is reported in ``reason``, never raised.
    """
    path = Path(path)
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        return {"signed": False, "reason": f"C2PA manifest not written: {path.suffix or 'no extension'} is not "
                f"supported (use {', '.join(MIME_TYPES)})"}
    import c2pa

    key, certs = signing_material()
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, certs, key, None))
        with atomic_path(path) as tmp, c2pa.Builder(
                _manifest(model, checkpoint_hash, title or path.name, assertions)) as builder, \
                open(path, "rb") as src, open(tmp, "w+b") as dst:
            builder.sign(signer, mime, src, dst)
    except Exception as e:  # c2pa errors come as many types; any of them means "not signed"
        return {"signed": False, "reason": f"C2PA manifest not written: {one_line(e)}"}
    return {"signed": True, "reason": None}


def read_manifest(path: str | os.PathLike) -> dict | None:
    """Summary of the file's active C2PA manifest with its validation state, or None if none."""
    path = Path(path)
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        return None
    import c2pa

    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(mime, f)
            if reader is None:
                return None
            with reader:
                store = json.loads(reader.json())
    except Exception as e:
        return {"validation_state": "Invalid", "error": one_line(e)}
    active = store.get("manifests", {}).get(store.get("active_manifest"), {})
    summary: dict = {"validation_state": store.get("validation_state"), "title": active.get("title")}
    for a in active.get("assertions", []):
        if a.get("label") == "org.wavesmith.generation":
            summary.update(a.get("data", {}))
        elif a.get("label", "").startswith("org.wavesmith."):  # e.g. org.wavesmith.voice -> summary["voice"]
            summary[a["label"].removeprefix("org.wavesmith.")] = a.get("data", {})
        elif a.get("label", "").startswith("c2pa.actions"):
            acts = a.get("data", {}).get("actions", [])
            summary["digital_source_type"] = next((x.get("digitalSourceType") for x in acts
                                                   if x.get("digitalSourceType")), None)
    info = active.get("signature_info") or {}
    summary["signer"] = info.get("common_name") or info.get("issuer")
    failures = (store.get("validation_results") or {}).get("activeManifest", {}).get("failure", [])
    summary["validation_failures"] = [f.get("code") for f in failures]
    return summary
