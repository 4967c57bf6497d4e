"""``/api/credentials`` on a real daemon: a credential's identity and times, the job held for
it and why, never what the credential contains."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from conftest import dashboard_cli, running_dashboard
from credentials.realcreds import make_token, write_private


def test_credentials_show_state_and_held_jobs_but_no_secret(tmp_path: Path) -> None:
    short = write_private(tmp_path / "short-token", make_token(30))
    secret = short.read_text().strip()
    env = {"BEARER_TOKEN_FILE": str(short), "XDG_RUNTIME_DIR": str(tmp_path / "run"),
           "X509_USER_PROXY": str(tmp_path / "no-proxy"), "KRB5CCNAME": f"FILE:{tmp_path / 'no-ccache'}"}
    config = ('\n[Credentials]\nmin_time_left = "60s"\nrenew_margin = 0\ncheck_interval = 0.2\n\n'
              f'[Credentials.defaults.mine]\ntype = "BearerToken"\ntoken_file = "{short}"\n')
    job = tmp_path / "gated.toml"
    job.write_text(f'name = "gated"\ncredentials = [{{type = "BearerToken", token_file = "{short}"}}]\n')
    with running_dashboard(tmp_path, config, env) as (url, token, gangadir):
        submitted = dashboard_cli(gangadir, "submit", str(job), "--json", env=env)
        assert submitted.returncode == 0, submitted.stderr
        job_id = json.loads(submitted.stdout)["id"]
        with httpx.Client(base_url=url, timeout=20, headers={"Authorization": f"token {token}"}) as api:
            deadline = time.monotonic() + 30
            while api.get(f"/api/jobs/{job_id}").json()["status"] != "held":
                assert time.monotonic() < deadline, "the job was never held"
                time.sleep(0.1)
            response = api.get("/api/credentials")
            recent = api.get("/api/events/recent").text
    rows = [r for r in response.json()["credentials"] if r["location"] == str(short)]
    assert rows and all(0 < r["time_left"] <= 30 and r["min_time_left"] == 60 for r in rows)
    held = [h for r in rows for h in r["held_jobs"]]
    assert held and held[0]["id"] == job_id and "BearerToken" in held[0]["reason"]
    for text in (response.text, recent):
        assert secret not in text and secret.split(".")[1] not in text
