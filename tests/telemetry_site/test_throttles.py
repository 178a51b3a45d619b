"""Rate limits count atomically (parallel requests cannot all pass) and failed token
authentications are throttled per client."""

from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from rest_framework.throttling import SimpleRateThrottle

from telemetry_site.api.throttles import ReadThrottle
from tests.conftest import api_client, token_for
from tests.usage.ingest.helpers import USAGE_URL

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates():
    """Set throttle rates for one test (DRF reads them into a class attribute at import)."""
    original = SimpleRateThrottle.THROTTLE_RATES

    def set_rates(**changes):
        SimpleRateThrottle.THROTTLE_RATES = {**original, **changes}

    yield set_rates
    SimpleRateThrottle.THROTTLE_RATES = original


def test_parallel_requests_on_redis_never_pass_more_than_the_rate(own_redis, rates):
    rates(read="600/minute")
    request = SimpleNamespace(auth=SimpleNamespace(pk=42), user=None, META={})

    def one(_):
        return ReadThrottle().allow_request(request, None)

    with ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(650)))
    assert results.count(True) == 600


def test_a_throttled_answer_says_when_to_come_back(member, rates):
    rates(read="2/minute")
    client = api_client(token_for(member))
    assert [client.get(USAGE_URL).status_code for _ in range(2)] == [200, 200]
    refused = client.get(USAGE_URL)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 60


def test_guessing_tokens_is_throttled_per_client_and_a_good_token_still_works(member, rates):
    rates(auth_failed="5/minute")
    guesser = api_client("cct_" + "x" * 40)
    codes = [guesser.get(USAGE_URL, REMOTE_ADDR="203.0.113.5").status_code for _ in range(6)]
    assert codes == [401] * 5 + [429]
    assert guesser.get(USAGE_URL, REMOTE_ADDR="203.0.113.5")["Retry-After"]
    # Another client is not held back, nor is a valid token from the same address.
    assert guesser.get(USAGE_URL, REMOTE_ADDR="198.51.100.1").status_code == 401
    good = api_client(token_for(member))
    assert good.get(USAGE_URL, REMOTE_ADDR="203.0.113.5").status_code == 200
