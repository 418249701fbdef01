"""Make the README's screenshots: docs/room.png (desktop) and docs/phone.png (a phone, the
room and its drawer side by side).

    .venv/bin/python docs/screenshots.py

It runs the site on a SQLite file of its own in a temporary folder (debug, in-memory
layer), seeds people, rooms and messages through the site itself (the log-in form and the
WebSocket, as users do), and takes the pictures in Debian's Chromium. Nothing it makes
outlives it but the two pictures.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Browser, Page, expect, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PEOPLE = {"alice": "Alice Martin", "bob": "Bob Stone", "carol": "Carol Diaz"}
PASSWORD = "screenshots-password-1"

SEED = f"""
from django.contrib.auth import get_user_model
from chat.models import Profile
User = get_user_model()
for username, display in {PEOPLE!r}.items():
    user = User.objects.create_user(username, password={PASSWORD!r})
    Profile.objects.update_or_create(user=user, defaults={{"display_name": display}})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env.update(
        DATABASE_URL=f"sqlite:///{folder / 'db.sqlite3'}",
        DJANGO_DEBUG="1",
        DJANGO_MEDIA_ROOT=str(folder / "media"),
        CHAT_RATE_LIMIT="off",
    )
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run([*manage, "shell", "-c", SEED], cwd=ROOT, env=env, check=True)
    port = free_port()
    server = subprocess.Popen(
        [*manage, "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(f"{base}/", timeout=1)
            return server, base
        except OSError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit("the site did not start")


def sign_in(browser: Browser, base: str, username: str, **context: object) -> Page:
    page = browser.new_context(**context).new_page()
    page.goto(f"{base}/accounts/login/?next=/chat/general/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#status")).to_have_text("Connected", timeout=15_000)
    return page


def say(page: Page, body: str) -> None:
    box = page.get_by_label("Message", exact=True)
    box.fill(body)
    box.press("Enter")
    expect(page.locator("#messages li.message:not([data-seq])")).to_have_count(0)


def make_room(page: Page, base: str, name: str, topic: str) -> None:
    page.goto(f"{base}/")
    page.get_by_label("Room name").fill(name)
    page.get_by_label("Topic").fill(topic)
    page.get_by_role("button", name="Create room").click()
    expect(page.locator("#room-name")).to_have_text(name)


def join(page: Page, base: str, slug: str) -> None:
    page.goto(f"{base}/chat/{slug}/")
    page.get_by_role("button", name="Join room").click()
    expect(page.get_by_role("button", name="Leave room")).to_be_visible()


def seed(browser: Browser, base: str) -> None:
    alice = sign_in(browser, base, "alice")
    bob = sign_in(browser, base, "bob")
    carol = sign_in(browser, base, "carol")
    for page in (alice, bob, carol):
        page.get_by_role("button", name="Join room").click()
    make_room(alice, base, "Design", "Mock-ups, fonts and colours")
    make_room(alice, base, "Release 2.0", "Shipping on Friday")
    release = room_slug(alice, "Release 2.0")
    join(bob, base, release)
    join(carol, base, release)
    join(carol, base, room_slug(alice, "Design"))
    for page in (alice, bob, carol):
        page.goto(f"{base}/chat/general/")
        expect(page.locator("#status")).to_have_text("Connected")
    say(bob, "Morning all! The **2.0** branch is cut")
    say(carol, "Nice. I pushed the new icons to `design/icons`; reviews welcome")
    say(alice, "Thanks @carol, looking now")
    say(bob, "@alice could you check the phone layout?\n- the drawer\n- the composer")
    say(carol, "Release notes draft: https://example.com/notes")
    say(alice, "On it. The drawer works by touch and by keyboard, Esc closes it")
    bob.goto(f"{base}/chat/{release}/")
    expect(bob.locator("#status")).to_have_text("Connected")
    say(bob, "Tagging rc1 in ten minutes")
    say(bob, "rc1 is out")
    bob.goto(f"{base}/chat/general/")
    expect(bob.locator("#status")).to_have_text("Connected")
    bob.get_by_label("Message", exact=True).press_sequentially("Let me ")
    alice.context.close()
    carol.context.close()


def room_slug(page: Page, name: str) -> str:
    href = page.locator("#nav-rooms a", has_text=name).first.get_attribute("href")
    assert href
    return href.strip("/").split("/")[-1]


def shoot(browser: Browser, base: str) -> None:
    desktop = sign_in(browser, base, "alice", viewport={"width": 1280, "height": 720})
    expect(desktop.locator("#online li")).to_have_count(2)
    desktop.wait_for_timeout(600)
    desktop.screenshot(path=ROOT / "docs" / "room.png")
    phone = {"viewport": {"width": 375, "height": 720}, "has_touch": True, "is_mobile": True}
    pictures = []
    page = sign_in(browser, base, "alice", **phone)
    page.wait_for_timeout(600)
    pictures.append(page.screenshot())
    page.get_by_role("button", name="Rooms and people").tap()
    page.wait_for_timeout(400)
    pictures.append(page.screenshot())
    side_by_side(pictures, ROOT / "docs" / "phone.png")


def side_by_side(pictures: list[bytes], path: Path) -> None:
    import io

    from PIL import Image

    images = [Image.open(io.BytesIO(picture)) for picture in pictures]
    gap = 24
    width = sum(image.width for image in images) + gap * (len(images) - 1)
    sheet = Image.new("RGB", (width, max(image.height for image in images)), "white")
    x = 0
    for image in images:
        sheet.paste(image, (x, 0))
        x += image.width + gap
    sheet.save(path, optimize=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as playwright:
        server, base = serve(Path(folder))
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            seed(browser, base)
            shoot(browser, base)
            browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)
    print("wrote docs/room.png and docs/phone.png")


if __name__ == "__main__":
    main()
