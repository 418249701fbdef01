"""chat/addresses.py: whose address a request or socket is counted under. Its answers about a
peer are kept (per address and proxy list), so they must follow CHAT_TRUSTED_PROXIES."""

from chat.addresses import client_address

PROXY = "10.0.0.1"
CLIENT = "203.0.113.5"


def test_without_trusted_proxies_a_forwarded_address_is_ignored(settings):
    settings.CHAT_TRUSTED_PROXIES = []
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == PROXY


def test_the_kept_answers_follow_a_change_of_trusted_proxies(settings):
    settings.CHAT_TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == CLIENT
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == CLIENT  # from what was kept

    settings.CHAT_TRUSTED_PROXIES = ["192.0.2.0/24"]  # the same peer, no longer trusted
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == PROXY

    settings.CHAT_TRUSTED_PROXIES = []
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == PROXY

    settings.CHAT_TRUSTED_PROXIES = ["10.0.0.0/24"]
    assert client_address(peer=PROXY, forwarded_for=[CLIENT]) == CLIENT


def test_a_peer_that_is_not_an_address_is_never_trusted(settings):
    settings.CHAT_TRUSTED_PROXIES = ["0.0.0.0/0"]
    assert client_address(peer="not-an-ip", forwarded_for=[CLIENT]) == "not-an-ip"
