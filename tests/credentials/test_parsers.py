"""Parsers of recorded tool output: MIT klist and OpenAFS tokens."""

from __future__ import annotations

import time

from ganga_async.credentials.afs import parse_tokens
from ganga_async.credentials.kerberos import parse_klist

KLIST = """\
Ticket cache: FILE:/tmp/krb5cc_1000
Default principal: testuser@TEST.LOCAL

Valid starting     Expires            Service principal
11/21/26 11:25:38  11/21/26 11:26:08  krbtgt/TEST.LOCAL@TEST.LOCAL
\trenew until 11/21/26 11:30:38
11/21/26 11:25:40  11/21/26 11:26:08  host/localhost@TEST.LOCAL
"""

TOKENS = """\

Tokens held by the Cache Manager:

User's (AFS ID 12345) rxkad tokens for cern.ch [Expires Nov 22 10:21]
User's (AFS ID 12345) tokens for afs@desy.de [>> Expired <<]
   --End of list--
"""


def local(text: str, form: str) -> float:
    return time.mktime(time.strptime(text, form))


def test_klist_gives_the_principal_and_the_tgt_with_its_renewal_limit() -> None:
    listing = parse_klist(KLIST)
    assert listing.cache == "FILE:/tmp/krb5cc_1000"
    assert listing.principal == "testuser@TEST.LOCAL"
    tgt = listing.tgt()
    assert tgt is not None and tgt.service == "krbtgt/TEST.LOCAL@TEST.LOCAL"
    assert tgt.expires == local("2026-11-21 11:26:08", "%Y-%m-%d %H:%M:%S")
    assert tgt.renew_until == local("2026-11-21 11:30:38", "%Y-%m-%d %H:%M:%S")
    assert len(listing.tickets) == 2


def test_tokens_gives_each_cell_with_its_expiry_in_the_nearest_year() -> None:
    now = local("2026-11-21 12:00:00", "%Y-%m-%d %H:%M:%S")
    cern, desy = parse_tokens(TOKENS, now=now)
    assert (cern.cell, cern.afs_id) == ("cern.ch", "12345")
    assert cern.expires == local("2026-11-22 10:21:00", "%Y-%m-%d %H:%M:%S")
    assert (desy.cell, desy.expires) == ("desy.de", 0.0)
    january = parse_tokens("User's (AFS ID 1) rxkad tokens for cern.ch [Expires Jan  2 09:00]",
                           now=local("2026-12-31 23:00:00", "%Y-%m-%d %H:%M:%S"))
    assert january[0].expires == local("2027-01-02 09:00:00", "%Y-%m-%d %H:%M:%S")


def test_an_empty_token_list_has_no_tokens() -> None:
    assert parse_tokens("\nTokens held by the Cache Manager:\n\n   --End of list--\n") == []
