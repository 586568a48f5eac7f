"""Browser tests: real Chromium (Debian's) driven by Playwright against a real `bakestore ui` server."""
