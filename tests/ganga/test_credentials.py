"""Credentials as seed 000 uses them, through the GPI, with real grid proxies."""

from __future__ import annotations

import os
from pathlib import Path

from gpi_script import run_script
from realcreds import Pki


def test_seed_000_credentials_transcript_runs_as_written(grid: Pki, tmp_path: Path) -> None:
    """Seed 000 (Ganga's credential habits): ``for c in CredentialStore.getCredentials():
    print(c.identity()); print(c.timeleft())``; ``c = VomsProxy(...); c.renew()``;
    ``j.credentials = [AFSToken(), c]`` (a job whose AFS token is missing waits ``held``, the
    reason printed, and can be killed); a default credential per backend in the configuration
    gates every job of that backend."""
    proxy = grid.make_voms_proxy(Path(os.environ["X509_USER_PROXY"]), 1800)
    renew = ["voms-proxy-fake", "-q", "-cert", str(grid.usercert), "-key", str(grid.userkey),
             "-out", str(proxy), "-hours", "1", "-voms", "testvo", "-hostcert",
             str(grid.hostcert), "-hostkey", str(grid.hostkey), "-uri", "voms.test.local:15000",
             "-bits", "1024", "-fqan", "/testvo/Role=NULL/Capability=NULL"]
    Path(os.environ["GANGA_ASYNC_CONFIG"]).write_text(
        '[Credentials]\nmin_time_left = "10m"\n\n'
        '[Credentials.defaults.grid]\ntype = "VomsProxy"\nvo = "testvo"\nbackends = ["Local"]\n')
    out = run_script(f"""
        import sys
        from ganga_async.gpi import *
        config["Logging"]["console"] = "OFF"
        for c in CredentialStore.getCredentials():
            print(c.identity())
            print(c.timeleft())
        c = VomsProxy(vo="testvo", renew_command={renew!r})
        c.renew()
        print("renewed:", c.timeleft() > 3000)
        j = Job(application=Executable(exe="/bin/true"))
        j.credentials = [AFSToken(), c]
        sys.stderr = sys.stdout
        j.submit()
        print("status:", j.status)
        j.kill()
        print("status:", j.status)
        k = Job(application=Executable(exe="/bin/true"))
        k.submit()
        k.wait(timeout=30)
        print("default credential:", k.status)
        import os
        os.remove({str(proxy)!r})
        m = Job(application=Executable(exe="/bin/true"))
        m.submit()
        print("without it:", m.status, "VomsProxy" in m.reason)
        m.kill()
    """, timeout=90)
    lines = out.splitlines()
    assert lines[0] == grid.user_dn
    assert 1500 < float(lines[1]) <= 1800
    assert "renewed: True" in lines
    held = [line for line in lines if line.startswith("job 0 is held: ")]
    assert len(held) == 1 and "AFS" in held[0]
    mine = [line for line in lines if line.startswith(("status:", "default credential:", "without it:"))]
    assert mine == ["status: held", "status: killed", "default credential: completed",
                    "without it: held True"]
