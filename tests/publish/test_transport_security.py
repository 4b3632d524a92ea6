"""Publishing fails closed: odd TLS settings, untrusted certificates, unknown or changed SSH keys.

Real servers: pyftpdlib FTPS with a self-signed certificate, the asyncssh SFTP server.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.errors import PublishAuthError, PublishError
from framecast.publish import publish_run, target_from_url, tls_context

ROOT = Path(__file__).resolve().parents[2]
RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("odd", ["flase", "nope", "2", "", "verify"])
def test_ftps_odd_verify_value_is_refused(run_path, ftp_server, airflow_env, odd):
    """The server's certificate is self-signed and not trusted: an odd ``verify`` value used
    to switch checking off and the upload went through; now it is refused before connecting."""
    from framecast_airflow.publish_hook import publish_from_connection

    srv = ftp_server(tls=True)
    airflow_env("fc_ftps", conn_type="ftps", host="127.0.0.1", port=srv.port, login=srv.user,
                password=srv.password, extra={"root": "pub", "verify": odd})
    with pytest.raises(PublishError, match="'verify' must be true or false"):
        publish_from_connection("fc_ftps", run_path, model="icon-eu", run_time=RUN)
    assert list(srv.root.iterdir()) == []


def test_ftps_bad_certificate_is_refused_with_verify_on(run_path, ftp_server, airflow_env):
    from framecast_airflow.publish_hook import publish_from_connection

    srv = ftp_server(tls=True)
    for value in ("yes", "true", True):
        airflow_env("fc_ftps", conn_type="ftps", host="127.0.0.1", port=srv.port,
                    login=srv.user, password=srv.password, extra={"root": "pub", "verify": value})
        with pytest.raises(PublishAuthError, match="certificate"):
            publish_from_connection("fc_ftps", run_path, model="icon-eu", run_time=RUN)
    assert list(srv.root.iterdir()) == []
    with pytest.raises(PublishError, match="verify must be true or false"):
        tls_context(None, verify="false")


def test_sftp_first_contact_records_the_key_and_a_changed_key_is_refused(
    run_path, sftp_server, tmp_path, check_published
):
    srv = sftp_server()
    kh = tmp_path / "ssh" / "known_hosts"  # does not exist yet: first contact
    target = target_from_url(srv.url(), password=srv.password, known_hosts=kh,
                             accept_unknown_host=True)
    publish_run(run_path, target, model="icon-eu", run_time=RUN, workers=2)
    check_published(srv.root / "charts", "icon-eu", run_path)
    # the accepted key is the server's real host key (independent oracle: its public key file)
    host_pub = srv.keys["host.pub"].read_text().split()[:2]
    lines = [line.split() for line in kh.read_text().splitlines() if line.strip()]
    assert [f"[127.0.0.1]:{srv.port}", *host_pub] in [line[:3] for line in lines]

    # the next connection, even without accept_unknown_host, trusts exactly that key
    again = target_from_url(srv.url(), password=srv.password, known_hosts=kh)
    publish_run(run_path, again, model="icon-eu", run_time=RUN)

    # the server's key changes (here: the file records another key for it): refused
    other = srv.keys["client.pub"].read_text().split()[:2]
    kh.write_text(f"[127.0.0.1]:{srv.port} {other[0]} {other[1]}\n")
    (srv.root / "charts").rename(srv.root / "before")
    changed = target_from_url(srv.url(), password=srv.password, known_hosts=kh,
                              accept_unknown_host=True)
    with pytest.raises(PublishAuthError, match="host key"):
        publish_run(run_path, changed, model="icon-eu", run_time=RUN)
    assert not (srv.root / "charts").exists()
    assert kh.read_text().split()[1:3] == other  # the recorded key was not replaced


def test_sftp_accepting_unknown_keys_needs_a_file_to_record_them(run_path, sftp_server):
    srv = sftp_server()
    target = target_from_url(srv.url(), password=srv.password, accept_unknown_host=True)
    with pytest.raises(PublishError, match="known_hosts file to record"):
        publish_run(run_path, target, model="icon-eu", run_time=RUN)
    assert list(srv.root.iterdir()) == []
