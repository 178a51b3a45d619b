"""The WSGI entry point moves a warmed process's long-lived objects out of the collector's way
after its first requests, and answers as the application does."""

import gc

import pytest

from telemetry_site import wsgi


@pytest.fixture
def unfrozen():
    yield
    # Importing the entry point froze the test process's objects; give them back.
    gc.unfreeze()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def test_the_process_freezes_after_the_given_requests_only(unfrozen):
    wrapped = wsgi.FreezeAfterWarmUp(app, after=(2, 4))
    answers = []

    def call() -> int:
        answers.append(b"".join(wrapped({}, lambda status, headers: None)))
        return gc.get_freeze_count()

    gc.unfreeze()
    kept = [[n] for n in range(1000)]  # built while warming up, kept for good
    assert call() == 0
    frozen = call()
    assert frozen >= len(kept)
    assert call() == frozen  # the third request changes nothing
    assert call() >= frozen
    assert answers == [b"ok"] * 4
    # Frozen: no generation the collector walks holds them any more.
    walked = {id(o) for o in gc.get_objects()}
    assert not any(id(k) in walked for k in kept)


def test_the_entry_point_serves_the_site(client, unfrozen):
    assert isinstance(wsgi.application, wsgi.FreezeAfterWarmUp)
    assert wsgi.application.after == set(wsgi.FREEZE_AFTER_REQUESTS)
