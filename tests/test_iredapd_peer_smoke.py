"""The iRedAPD test peer itself: it starts, and answers as Postfix expects."""

from tests.iredapd_peer import sql_statements


def test_peer_answers_a_policy_request(iredapd_peer):
    assert iredapd_peer.ask(sender="a@example.net", recipient="nobody@example.org") == "DUNNO"


def test_sql_statements_honour_delimiter():
    script = ("CREATE TABLE a (x INT); -- c;\nDELIMITER //\nCREATE TRIGGER t BEGIN SET x = 1; END;\n//\n"
              "DELIMITER ;\nSELECT 1;")
    assert sql_statements(script) == ["CREATE TABLE a (x INT)", "CREATE TRIGGER t BEGIN SET x = 1; END;", "SELECT 1"]
