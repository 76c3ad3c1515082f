"""The checker (checker.py) on synthetic histories: a clean history passes, and each kind
of anomaly is caught, counted once and reported with its example, without also being
reported as another kind."""
from checker import FAILED, KINDS, UNKNOWN, History, check, make_id, parse_id


def acked(history, producer, seq, partition, offset):
    history.invoke(producer, seq, partition)
    history.ack(make_id(producer, seq), partition, offset)


def clean():
    """Two producers, two partitions, each record acknowledged where it is."""
    h = History()
    log = {0: [], 1: []}
    offsets = {0: 0, 1: 0}
    for seq in range(6):
        for producer in (1, 2):
            partition = seq % 2
            acked(h, producer, seq, partition, offsets[partition])
            log[partition].append((offsets[partition], make_id(producer, seq)))
            offsets[partition] += 1
    return h, log


def only(report, kind, n=1):
    assert report.counts[kind] == n, report
    assert {k: v for k, v in report.counts.items() if k != kind} == {k: 0 for k in KINDS if k != kind}, report
    assert not report.ok


def test_ids_round_trip():
    assert parse_id(make_id(3, 41)) == ("3", 41)
    assert parse_id(b"p7-0") == ("7", 0)
    assert parse_id("garbage") is None
    assert parse_id("px-y") is None


def test_a_clean_history_passes():
    h, log = clean()
    report = check(h, log)
    assert report.ok, report
    assert report.acked == 12 and report.read == 12
    assert "anomalies: none" in report.summary()


def test_unknown_and_failed_records_may_be_missing_and_unknown_ones_present():
    h, log = clean()
    h.invoke(1, 100, 0)
    h.unknown(make_id(1, 100), "_MSG_TIMED_OUT")  # missing: fine
    h.invoke(1, 101, 0)
    h.unknown(make_id(1, 101), "_MSG_TIMED_OUT")  # present: fine too
    log[0].append((6, make_id(1, 101)))
    h.invoke(2, 100, 1)
    h.fail(make_id(2, 100), "MSG_SIZE_TOO_LARGE")  # missing, as it must be
    report = check(h, log)
    assert report.ok, report
    assert (report.unknown, report.failed) == (2, 1)


def test_a_lost_acknowledged_record_is_caught():
    h, log = clean()
    del log[1][2]
    report = check(h, log)
    only(report, "lost")
    assert "acknowledged at 1/2" in report.examples["lost"][0]


def test_a_truncated_tail_loses_every_record_in_it():
    h, log = clean()
    log[0] = log[0][:2]
    only(check(h, log), "lost", 4)


def test_a_duplicate_is_caught():
    h, log = clean()
    value = log[0][1][1]
    log[0].append((6, value))
    report = check(h, log)
    only(report, "duplicated")
    assert value in report.examples["duplicated"][0]


def test_a_record_never_sent_is_caught():
    h, log = clean()
    log[1].append((6, "p9-0"))
    log[1].append((7, "not an id"))
    report = check(h, log)
    only(report, "unexpected", 2)
    assert "never sent" in report.examples["unexpected"][0]


def test_a_definitively_failed_record_that_was_written_is_caught():
    h, log = clean()
    h.invoke(1, 50, 0)
    h.fail(make_id(1, 50), "MSG_SIZE_TOO_LARGE")
    log[0].append((6, make_id(1, 50)))
    report = check(h, log)
    only(report, "unexpected")
    assert "failed definitively" in report.examples["unexpected"][0]


def test_an_aborted_record_read_committed_is_g1a():
    h, log = clean()
    for seq in (60, 61):
        h.invoke(1, seq, 0)
        h.abort(make_id(1, seq))
    log[0].append((6, make_id(1, 60)))
    report = check(h, log)
    only(report, "aborted_read")
    assert report.aborted == 2


def test_records_of_one_producer_out_of_order_in_a_partition_are_caught():
    h, log = clean()
    # Producer 1's records in partition 0 are seqs 0, 2, 4 at offsets 0, 2, 4: swap 2 and 4.
    log[0] = [(o, v) for o, v in log[0]]
    (o2, v2), (o4, v4) = log[0][2], log[0][4]
    log[0][2], log[0][4] = (o2, v4), (o4, v2)
    # The acknowledged offsets no longer match either.
    report = check(h, log)
    assert report.counts["order"] == 1, report
    assert report.counts["offset_mismatch"] == 2, report
    assert report.counts["lost"] == report.counts["duplicated"] == 0
    assert "after p1-4" in report.examples["order"][0]


def test_order_across_producers_and_partitions_is_free():
    h = History()
    acked(h, 1, 0, 0, 1)
    acked(h, 2, 0, 0, 0)
    acked(h, 1, 1, 1, 0)
    log = {0: [(0, "p2-0"), (1, "p1-0")], 1: [(0, "p1-1")]}
    assert check(h, log).ok


def test_gaps_in_a_producers_sequence_are_not_order_violations():
    h = History()
    acked(h, 1, 0, 0, 0)
    h.invoke(1, 1, 0)
    h.unknown(make_id(1, 1))
    acked(h, 1, 2, 0, 1)
    assert check(h, {0: [(0, "p1-0"), (1, "p1-2")]}).ok


def test_an_acknowledged_offset_that_holds_another_record_is_caught():
    h, log = clean()
    # The broker acknowledged p2-5 at 1/5 but the record sits at 1/6, after a stranger.
    log[1][5] = (6, "p2-5")
    h.invoke(3, 0, 1)
    h.unknown(make_id(3, 0))
    log[1].insert(5, (5, "p3-0"))
    report = check(h, log)
    only(report, "offset_mismatch")
    assert "acknowledged at 1/5, found at [(1, 6)]" in report.examples["offset_mismatch"][0]


def test_an_ack_in_the_wrong_partition_is_an_offset_mismatch():
    h = History()
    acked(h, 1, 0, 1, 0)
    only(check(h, {0: [(0, "p1-0")], 1: []}), "offset_mismatch")


def test_a_polled_record_missing_from_the_final_log_is_caught():
    h, log = clean()
    h.poll(0, 0, log[0][0][1])  # consistent
    h.poll(0, 6, b"p1-99")  # read above what survived
    h.poll(1, 1, "p1-77")  # a different record at that offset now
    report = check(h, log)
    only(report, "polled_missing", 2)
    assert "the final log has nothing" in report.examples["polled_missing"][0]


def test_pending_sends_become_unknown():
    h = History()
    h.invoke(1, 0, 0)
    h.resolve_pending()
    assert h.ops["p1-0"].status == UNKNOWN
    assert check(h, {0: []}).ok


def test_each_kind_is_counted_in_one_report():
    h, log = clean()
    del log[1][0]  # lost
    log[0].append((6, log[0][0][1]))  # duplicated
    log[0].append((7, "p8-8"))  # unexpected
    h.invoke(1, 70, 0)
    h.abort("p1-70")
    log[0].append((8, "p1-70"))  # aborted read
    h.poll(1, 9, "p1-0")  # polled, not there
    h.invoke(1, 80, 0)
    h.fail("p1-80", "INVALID_RECORD")
    report = check(h, log)
    assert report.anomalies() == {"lost": 1, "duplicated": 1, "unexpected": 1, "aborted_read": 1, "polled_missing": 1}
    assert report.failed == 1 and h.ops["p1-80"].status == FAILED
    for kind in report.anomalies():
        assert kind in report.summary()
