"""Issue 8: each provider's setup page and the README say which event types are handled, what each
does, and which are knowingly ignored, and they stay true as handlers change."""

from pathlib import Path

import pytest

from integrations.registry import get_provider
from webhooks.testing import connect

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
DOCUMENTED = ("stripe", "zoom", "ghl", "eventbrite")


@pytest.mark.parametrize("name", DOCUMENTED)
def test_every_handled_event_type_says_what_it_does(name):
    provider = get_provider(name)
    assert provider.handlers and set(provider.event_docs) == set(provider.handlers)
    assert all(does.strip() for does in provider.event_docs.values())
    assert not set(provider.handlers) & provider.ignored_events


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_readme_lists_every_handled_and_ignored_event_type(name):
    provider = get_provider(name)
    section = README[README.index("### What each platform's events do"):]
    section = section[section.index(f"**{provider.label}.**"):]
    for event, does in provider.handled_events:
        assert f"| `{event}` | {does} |" in section, event
    for event in provider.ignored_list:
        assert f"`{event}`" in section, event


@pytest.mark.parametrize("name", DOCUMENTED)
def test_the_setup_page_lists_them(world, client, name):
    connect(world.acme, name, "a-webhook-secret-0123456789abcdef")
    client.force_login(world.alice)
    page = client.get(f"/setup/{name}/").content.decode()
    provider = get_provider(name)
    for event, _does in provider.handled_events:
        assert f"<code>{event}</code>" in page, event
    assert "knowingly ignored" in page and all(event in page for event in provider.ignored_list)
