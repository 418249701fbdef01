"""In real Chromium, two users live: alice attaches an image (through the labelled button,
on a slow network, so its progress bar shows), drops a text file on the composer, pastes
an image and removes a file she dropped by mistake; bob
sees the thumbnail, opens the full image in a new tab and downloads the text file; after a
reload the server renders the same files. Deleting the message takes the files away."""

import io
import os

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.support.browser import TIMEOUT_MS, open_as, wait_until
from tests.support.live_server import LiveSite

pytestmark = [pytest.mark.browser, pytest.mark.own_database]

TEXT = b"the minutes of the meeting\n"


def noisy_png() -> bytes:
    """About 1 MB that PNG cannot compress: at 256 KiB/s its upload takes seconds."""
    out = io.BytesIO()
    Image.frombytes("RGB", (600, 600), os.urandom(600 * 600 * 3)).save(out, format="PNG")
    return out.getvalue()


def drop_file(page: Page, name: str, data: bytes, mime: str) -> None:
    """Drop a file on the composer, as dragging one from the desktop does."""
    page.evaluate(
        """([name, bytes, mime]) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
          const form = document.getElementById("composer");
          const init = { dataTransfer: transfer, bubbles: true, cancelable: true };
          form.dispatchEvent(new DragEvent("dragover", init));
          form.dispatchEvent(new DragEvent("drop", init));
        }""",
        [name, list(data), mime],
    )


def paste_file(page: Page, name: str, data: bytes, mime: str) -> None:
    """Paste a file into the message box, as pasting a copied image does."""
    page.evaluate(
        """([name, bytes, mime]) => {
          const transfer = new DataTransfer();
          transfer.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
          const event = new ClipboardEvent("paste", {
            clipboardData: transfer, bubbles: true, cancelable: true,
          });
          document.getElementById("composer-input").dispatchEvent(event);
        }""",
        [name, list(data), mime],
    )


def small_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(out, format="PNG")
    return out.getvalue()


def test_files_upload_with_progress_and_reach_the_other_user(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    alice = open_as(browser, live_site, profiles, "alice", accept_downloads=True)
    bob = open_as(browser, live_site, profiles, "bob", accept_downloads=True)
    expect(alice.locator("#online li")).to_have_text(["alice", "bob"])
    cdp = alice.context.new_cdp_session(alice)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )

    attach = alice.get_by_role("button", name="Attach files")
    with alice.expect_file_chooser() as chooser:
        attach.click()
    chooser.value.set_files(
        files=[{"name": "photo.png", "mimeType": "image/png", "buffer": noisy_png()}]
    )
    chips = alice.get_by_role("list", name="Files to send")
    progress = chips.get_by_role("progressbar", name="Uploading photo.png")
    expect(progress).to_be_visible()
    # Enter while it uploads: the message waits for its files (more may join it meanwhile).
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("the photo and the minutes")
    composer.press("Enter")
    expect(composer).to_have_value("the photo and the minutes")
    drop_file(alice, "minutes.txt", TEXT, "text/plain")
    paste_file(alice, "pasted.png", small_png(), "image/png")
    drop_file(alice, "mistake.txt", b"oops", "text/plain")
    expect(chips.locator("li.file-chip")).to_have_count(4)
    chips.get_by_role("button", name="Remove mistake.txt").click()
    expect(chips.locator("li.file-chip")).to_have_count(3)
    expect(composer).to_have_value("the photo and the minutes")  # a pasted file is no text
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(chips).to_be_hidden(timeout=30_000)  # sent, once every file was up

    line = bob.get_by_role("log").locator("li[data-seq]").filter(has_text="the minutes")
    expect(line.get_by_role("img", name="pasted.png")).to_be_visible()
    expect(line.get_by_role("link", name="mistake.txt")).to_have_count(0)
    thumbnail = line.get_by_role("img", name="photo.png")
    expect(thumbnail).to_be_visible()
    # Visible is not loaded: wait for the thumbnail's bytes before asking its size.
    loaded = "(img) => img.complete && img.naturalWidth > 0"
    wait_until(bob, loaded, thumbnail.element_handle())
    assert bob.evaluate("(img) => img.naturalWidth", thumbnail.element_handle()) == 360
    with bob.context.expect_page() as opened:
        line.get_by_role("link", name="photo.png").click()
    full = opened.value
    full.wait_for_load_state()
    assert full.url.endswith("/photo.png")
    assert full.evaluate("() => document.images[0].naturalWidth") == 600
    full.close()
    download_link = line.get_by_role("link", name="minutes.txt")
    href = download_link.get_attribute("href")
    expect(download_link).to_contain_text("(27\N{NO-BREAK SPACE}bytes)")
    with bob.expect_download() as download:
        download_link.click()
    assert download.value.suggested_filename == "minutes.txt"
    with open(download.value.path(), "rb") as saved:
        assert saved.read() == TEXT

    # The server renders the same files after a reload.
    bob.reload()
    expect(bob.locator("#status")).to_have_text("Connected")
    expect(line.get_by_role("img", name="photo.png")).to_be_visible()
    expect(line.get_by_role("link", name="minutes.txt")).to_be_visible()

    # Deleting the message takes its files along.
    alice.once("dialog", lambda dialog: dialog.accept())
    mine = alice.get_by_role("log").locator("li[data-seq]").filter(has_text="the minutes")
    mine.hover()
    mine.get_by_role("button", name="Delete").click()
    expect(line).to_have_count(0)
    answer = bob.request.get(f"{live_site.base_url}{href}")
    assert answer.status == 404


# Names that are markup: a file's name is text wherever it shows (a link, an image's alt,
# a chip), live and server-rendered, and nothing in it runs. Its quotes come back as typed
# (the browser sends them as %22: attachments.display_name).
HOSTILE_TEXT = '"><img src=x onerror="window.pwned=1">.txt'
HOSTILE_IMAGE = "<svg onload=window.pwned=1>.png"


def test_hostile_file_names_are_shown_as_text_and_never_run(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    alice = open_as(browser, live_site, profiles, "alice", accept_downloads=True)
    bob = open_as(browser, live_site, profiles, "bob", accept_downloads=True)
    drop_file(alice, HOSTILE_TEXT, TEXT, "text/plain")
    paste_file(alice, HOSTILE_IMAGE, small_png(), "image/png")
    chips = alice.get_by_role("list", name="Files to send").locator("li.file-chip")
    expect(chips).to_have_count(2)
    expect(chips.first).to_contain_text(HOSTILE_TEXT)
    expect(chips.locator("img, svg")).to_have_count(0)
    expect(alice.locator("li.file-chip.uploading")).to_have_count(0, timeout=TIMEOUT_MS)
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("hostile names")
    composer.press("Enter")
    expect(chips).to_have_count(0)

    for page, reload in ((bob, False), (bob, True), (alice, False)):
        if reload:
            page.reload()
        line = page.get_by_role("log").locator("li[data-seq]").filter(has_text="hostile names")
        expect(line).to_have_count(1, timeout=TIMEOUT_MS)
        expect(line.get_by_role("link", name=HOSTILE_TEXT)).to_have_count(1)
        expect(line.get_by_role("img", name=HOSTILE_IMAGE)).to_have_attribute("alt", HOSTILE_IMAGE)
        # The markup in the names made no element: one image (the thumbnail), no svg.
        expect(line.locator("img")).to_have_count(1)
        expect(line.locator("svg")).to_have_count(0)
        assert page.evaluate("() => window.pwned") is None


def test_enter_while_a_file_uploads_sends_the_message_once_it_is_uploaded(
    browser: Browser, live_site: LiveSite, profiles: list[Page]
) -> None:
    alice = open_as(browser, live_site, profiles, "alice", accept_downloads=True)
    bob = open_as(browser, live_site, profiles, "bob", accept_downloads=True)
    cdp = alice.context.new_cdp_session(alice)
    cdp.send("Network.enable")
    cdp.send(  # about 4 s for the noisy PNG
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 256 * 1024},
    )
    drop_file(alice, "slow.png", noisy_png(), "image/png")
    uploading = alice.locator("li.file-chip.uploading")
    expect(uploading).to_have_count(1)
    composer = alice.get_by_label("Message", exact=True)
    composer.fill("sent when the file is up")
    composer.press("Enter")
    composer.press("Enter")  # twice: still one message
    expect(uploading).to_have_count(1)  # not yet: it waits for the upload

    line = bob.get_by_role("log").locator("li[data-seq]").filter(has_text="sent when the file")
    expect(line).to_have_count(1, timeout=30_000)
    expect(line.get_by_role("img", name="slow.png")).to_be_visible()
    expect(alice.get_by_role("list", name="Files to send").locator("li")).to_have_count(0)
    expect(composer).to_have_value("")
    alice.wait_for_timeout(500)  # a second send would have reached bob by now
    expect(line).to_have_count(1)
