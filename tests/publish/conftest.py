"""Fixtures for publishing tests: small real rendered runs, and real servers on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from framecast.records import FrameRecord, run_dir, write_records

RUN_TIME = datetime(2026, 11, 23, 0, tzinfo=UTC)
COLOURS = {"t2m": (200, 80, 60), "pmsl": (60, 90, 200), "precip": (40, 160, 90)}


def make_png(
    path: Path, text: str, colour: tuple[int, int, int], size=(200, 150), noise: bool = False,
    palette: bool = False,
) -> None:
    """A small real PNG; a few text-seeded dots make sizes differ per frame like real charts.
    ``noise`` fills a band with random pixels so the file is large (for mid-upload faults);
    ``palette`` writes an 8-bit palette PNG with framecast's encoder, as the renderer does."""
    img = Image.new("RGB", size, (245, 245, 245))
    draw = ImageDraw.Draw(img)
    draw.rectangle([10, 10, size[0] - 10, size[1] - 40], fill=colour)
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    for i in range(40):
        x = (seed >> (i % 24)) % size[0] + i
        draw.point((x % size[0], (seed + 7 * i) % size[1]), fill=(i * 5 % 255, 0, 0))
    if noise:
        import numpy as np

        rng = np.random.default_rng(seed)
        band = rng.integers(0, 255, size=(size[1] // 3, size[0], 3), dtype=np.uint8)
        img.paste(Image.fromarray(band), (0, size[1] // 3))
        draw = ImageDraw.Draw(img)
    draw.text((20, size[1] - 32), text, fill=(0, 0, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    if palette:
        import numpy as np

        from framecast.render.encode import PngPalette, encode_png

        rgb = np.asarray(img)
        path.write_bytes(encode_png(rgb, palette=PngPalette.build(np.array([colour]), rgb)))
        return
    img.save(path, format="PNG")


def make_run(
    out_root: Path,
    *,
    model: str = "icon-eu",
    run_time: datetime = RUN_TIME,
    products=("t2m", "pmsl"),
    regions=("europe", "alps"),
    steps=(0, 1, 2, 3),
    tag: str = "",
    size=(200, 150),
    noise: bool = False,
    palette: bool = False,
) -> Path:
    """A rendered run folder: PNG frames + frame records, like the renderer leaves it."""
    rd = run_dir(out_root, model, run_time)
    for product in products:
        for region in regions:
            recs = []
            for step in steps:
                rel = f"{product}/{region}/{product}_{region}_{step:03d}.png"
                make_png(rd / rel, f"{tag}{model} {product} {region} +{step}h",
                         COLOURS.get(product, (120, 120, 120)), size, noise, palette)
                recs.append(FrameRecord(
                    model=model, run=run_time.isoformat(), product=product, region=region,
                    step=step, path=rel, bytes=(rd / rel).stat().st_size,
                    valid_time=(run_time + timedelta(hours=step)).isoformat(),
                ))
            write_records(rd, f"{product}__{region}", recs)
    return rd


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_published(root: Path, model: str, run_path: Path, *, complete: bool = True) -> dict:
    """The remote tree holds exactly the run's files, byte for byte, and the manifest agrees."""
    run_id = run_path.name
    remote_run = root / model / run_id
    manifest = json.loads((remote_run / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and manifest["model"] == model
    assert manifest["complete"] is complete
    assert manifest["files"], "manifest lists no files"
    for rel, meta in manifest["files"].items():
        remote = remote_run / rel
        local = run_path / rel
        assert remote.is_file(), f"missing on server: {rel}"
        assert remote.stat().st_size == meta["size"] == local.stat().st_size, rel
        assert sha256(remote) == meta["sha256"] == sha256(local), rel
    on_server = {
        p.relative_to(remote_run).as_posix() for p in remote_run.rglob("*") if p.is_file()
    }
    assert on_server == set(manifest["files"]) | {"manifest.json"}, "unexpected remote files"
    return manifest


@pytest.fixture
def run_path(tmp_path: Path) -> Path:
    return make_run(tmp_path / "out")


@pytest.fixture
def make_run_dir():
    """The :func:`make_run` helper, for tests that need several runs."""
    return make_run


@pytest.fixture
def check_published():
    """The :func:`assert_published` helper."""
    return assert_published


# --------------------------------------------------------------------------------------------
# FTP / FTPS: pyftpdlib in a thread, optional server-side fault after N uploaded bytes
# --------------------------------------------------------------------------------------------


def self_signed_cert(folder: Path) -> Path:
    """A PEM file with a self-signed cert for 127.0.0.1 and its key (also the client's CA)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = folder / "server.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem


class Fault:
    """Server-side fault: after ``after_bytes`` received by one upload, call ``on_fault`` (in
    the server thread, while the client is mid-upload) and drop the client's connections."""

    def __init__(self, after_bytes: int, times: int = 1, on_fault=None) -> None:
        self.after_bytes = after_bytes
        self.remaining = times
        self.on_fault = on_fault
        self.fired = 0
        self.errors: list[BaseException] = []

    def should_fire(self, received: int) -> bool:
        return self.remaining > 0 and received >= self.after_bytes


class FtpServer:
    def __init__(self, root: Path, *, tls: bool, fault: Fault | None, cert: Path | None):
        import threading

        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import DTPHandler, FTPHandler
        from pyftpdlib.servers import FTPServer

        self.root = root
        self.user, self.password = "pub", "s3cret"
        self.cafile = cert
        auth = DummyAuthorizer()
        auth.add_user(self.user, self.password, str(root), perm="elradfmwMT")
        if tls:
            from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler

            base_handler, base_dtp = TLS_FTPHandler, TLS_DTPHandler
        else:
            base_handler, base_dtp = FTPHandler, DTPHandler

        class FaultyDTP(base_dtp):
            def handle_read_event(self):
                super().handle_read_event()
                if self._closed:
                    return
                if fault is not None and fault.should_fire(self.tot_bytes_received):
                    fault.remaining -= 1
                    fault.fired += 1
                    if fault.on_fault is not None:
                        try:
                            fault.on_fault()
                        except BaseException as exc:  # reported by the test
                            fault.errors.append(exc)
                    cmd = self.cmd_channel
                    self.close()
                    cmd.close()

        attrs = {"authorizer": auth, "dtp_handler": FaultyDTP, "banner": "framecast test"}
        if tls:
            attrs.update(certfile=str(cert), tls_control_required=True, tls_data_required=True)
        handler = type("Handler", (base_handler,), attrs)
        self.server = FTPServer(("127.0.0.1", 0), handler)
        self.port = self.server.socket.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        import logging

        logging.getLogger("pyftpdlib").setLevel(logging.WARNING)
        while not self._stop.is_set():
            self.server.ioloop.loop(timeout=0.05, blocking=False)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.server.close_all()


@pytest.fixture
def ftp_server(tmp_path: Path):
    """Factory: ``ftp_server(tls=False, fault=None)`` -> a running pyftpdlib server."""
    servers: list[FtpServer] = []

    def start(*, tls: bool = False, fault: Fault | None = None) -> FtpServer:
        root = tmp_path / f"ftproot{len(servers)}"
        root.mkdir()
        cert = self_signed_cert(tmp_path) if tls else None
        srv = FtpServer(root, tls=tls, fault=fault, cert=cert)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


@pytest.fixture
def make_fault():
    """The :class:`Fault` class (server-side connection cut after N bytes)."""
    return Fault


# --------------------------------------------------------------------------------------------
# SFTP: asyncssh server in a subprocess (so "server killed" really kills it)
# --------------------------------------------------------------------------------------------

SFTP_SCRIPT = Path(__file__).with_name("sftp_server.py")


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory) -> dict[str, Path]:
    """Server host key and a client key pair, ed25519, OpenSSH format."""
    import asyncssh

    d = tmp_path_factory.mktemp("sshkeys")
    out = {}
    for name in ("host", "client"):
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(d / name)
        key.write_public_key(d / f"{name}.pub")
        (d / name).chmod(0o600)
        out[name] = d / name
        out[f"{name}.pub"] = d / f"{name}.pub"
    return out


class SftpServer:
    def __init__(self, root: Path, keys: dict[str, Path], folder: Path) -> None:
        self.root = root
        self.keys = keys
        self.user, self.password = "pub", "s3cret"
        self.port = 0
        self.proc = None
        self.known_hosts = folder / "known_hosts"
        self.client_key = keys["client"]

    def start(self, *, die_after_bytes: int = 0) -> SftpServer:
        import subprocess
        import sys

        cmd = [
            sys.executable, str(SFTP_SCRIPT), "--root", str(self.root),
            "--host-key", str(self.keys["host"]), "--user", self.user,
            "--password", self.password, "--authorized-key", str(self.keys["client.pub"]),
            "--port", str(self.port), "--die-after-bytes", str(die_after_bytes),
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("READY "), f"sftp server did not start: {line!r}"
        self.port = int(line.split()[1])
        pub = self.keys["host.pub"].read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        if self.proc is not None:
            self.proc.stdout.close()

    def url(self, root: str = "/charts", user: str | None = None) -> str:
        return f"sftp://{user or self.user}@127.0.0.1:{self.port}{root}"


@pytest.fixture
def sftp_server(tmp_path: Path, ssh_keys):
    """Factory: ``sftp_server(die_after_bytes=0)`` -> a running asyncssh SFTP server process."""
    servers: list[SftpServer] = []

    def start(*, die_after_bytes: int = 0) -> SftpServer:
        root = tmp_path / f"sftproot{len(servers)}"
        root.mkdir()
        srv = SftpServer(root, ssh_keys, tmp_path).start(die_after_bytes=die_after_bytes)
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.stop()


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def airflow_env(tmp_path, monkeypatch):
    """A throw-away AIRFLOW_HOME and the plugins folder importable, as in a deployment."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    monkeypatch.syspath_prepend(str(ROOT / "plugins"))

    def set_conn(conn_id: str, **fields) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))

    return set_conn
