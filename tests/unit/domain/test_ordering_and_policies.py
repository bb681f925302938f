from domain.free_tickets import DEFAULT_FREE_TICKET_PRODUCT_UUIDS, FreeTicketPolicy
from domain.ordering import sort_by_time_created
from domain.timeout import is_stale
from tests.unit.passes import FREE_PRODUCT, PAID_PRODUCT, a_pass


def uuids(payloads: list[dict]) -> list[str]:
    return [p["uuid"] for p in payloads]


def test_passes_are_ordered_oldest_first_by_time_created() -> None:
    passes = [
        a_pass("c", created="2026-11-22T00:00:00.000Z"),
        a_pass("a", created="2026-11-20T00:00:00Z"),
        a_pass("b", created="2026-11-21T00:00:00.500+00:00"),
    ]
    assert uuids(sort_by_time_created(passes)) == ["a", "b", "c"]


def test_offsets_are_compared_as_instants() -> None:
    passes = [
        a_pass("utc-earlier-in-the-day", created="2026-11-20T05:00:00Z"),
        a_pass("plus-two-is-earlier", created="2026-11-20T06:00:00+02:00"),
    ]
    assert uuids(sort_by_time_created(passes)) == [
        "plus-two-is-earlier",
        "utc-earlier-in-the-day",
    ]


def test_missing_or_unparsable_time_created_goes_last_in_original_order() -> None:
    passes = [
        a_pass("missing", created=None),
        a_pass("garbage", created="yesterday"),
        a_pass("dated", created="2026-01-01T00:00:00Z"),
        a_pass("not-a-string", created=None, time_created=12345),
    ]
    assert uuids(sort_by_time_created(passes)) == [
        "dated",
        "missing",
        "garbage",
        "not-a-string",
    ]


def test_equal_times_keep_bytemark_order() -> None:
    same = "2026-11-20T14:05:32.000Z"
    passes = [a_pass(u, created=same) for u in ["z", "y", "x"]]
    assert uuids(sort_by_time_created(passes)) == ["z", "y", "x"]


def test_default_free_ticket_products_are_the_two_loyalty_products() -> None:
    assert DEFAULT_FREE_TICKET_PRODUCT_UUIDS == {
        "2417edb7-856c-43ee-b3df-c508b8be259b",
        "654b9f9d-5972-445b-8c6b-5c29a35c7751",
    }
    policy = FreeTicketPolicy()
    assert policy.is_free(a_pass("x", product=FREE_PRODUCT))
    assert not policy.is_free(a_pass("x", product=PAID_PRODUCT))
    assert not policy.is_free({"uuid": "no-product"})


def test_free_ticket_products_are_configurable_and_case_insensitive() -> None:
    policy = FreeTicketPolicy.of([" ABC ", ""])
    assert policy.is_free({"product_uuid": "abc"})
    assert not policy.is_free({"product_uuid": FREE_PRODUCT})


def test_a_cache_is_stale_only_when_strictly_older_than_the_timeout() -> None:
    assert not is_stale(cache_timestamp=1000, now=4600, max_age_seconds=3600)
    assert is_stale(cache_timestamp=1000, now=4601, max_age_seconds=3600)
    assert not is_stale(cache_timestamp=5000, now=4000, max_age_seconds=3600)
