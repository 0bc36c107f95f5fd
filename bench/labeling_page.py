"""Labeling page: time from Enter (save & next) to the next item's structure on screen.

Drives headless Chromium (Debian's, as tests/browser) against a running server whose
database holds `seed_demo` (20 open items in cycle 1), as the demo scientist:

    python bench/labeling_page.py http://127.0.0.1:8000 [--labels 20]

Each label: type the model's prediction into the value field, press Enter, stop the
clock when the next item's URL is shown and its structure image has loaded. Prints
the median and the slowest, and how many requests each save took. The last save of
an emptied queue lands on the "nothing to label" page and is not timed.
"""

from __future__ import annotations

import argparse
import statistics
import time

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-sync"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--user", default="scientist")
    parser.add_argument("--password", default="chemloop-demo")
    args = parser.parse_args()
    base = args.url.rstrip("/")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{base}/accounts/login/")
        page.fill("input[name=username]", args.user)
        page.fill("input[name=password]", args.password)
        page.click("form button[type=submit]")
        page.wait_for_url(f"{base}/queue/**")
        page.goto(f"{base}/queue/label/")
        times: list[float] = []
        requests: list[int] = []
        sent: list[str] = []
        page.on("request", lambda r: sent.append(r.resource_type))
        for _ in range(args.labels):
            if not page.locator("#id_value").count():
                break
            page.wait_for_function("document.querySelector('.structure-large img').complete")
            page.fill("#id_value", page.get_attribute("#id_value", "placeholder").removeprefix("e.g. ") or "-2")
            before = page.url
            sent.clear()
            start = time.perf_counter()
            page.keyboard.press("Enter")
            page.wait_for_url(lambda url, before=before: url != before, wait_until="commit")
            if "/queue/label/" not in page.url or page.url.rstrip("/").endswith("/queue/label"):
                break  # the queue is empty: the "nothing to label" page
            page.wait_for_function(
                "document.querySelector('.structure-large img') && document.querySelector('.structure-large img').complete"
                " && document.querySelector('.structure-large img').naturalWidth > 0"
            )
            times.append(time.perf_counter() - start)
            requests.append(sum(1 for kind in sent if kind in ("document", "xhr", "fetch")))
        browser.close()
    ms = [t * 1000 for t in times]
    print(f"{len(ms)} save-and-next transitions timed")
    print(f"median {statistics.median(ms):.0f} ms, p90 {sorted(ms)[int(0.9 * (len(ms) - 1))]:.0f} ms, "
          f"max {max(ms):.0f} ms, min {min(ms):.0f} ms")
    print(f"page and htmx requests per save (documents, redirects followed, xhr), median: {statistics.median(requests):.0f}")


if __name__ == "__main__":
    main()
