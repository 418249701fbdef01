"""The browser client's DOM-free modules, run by Node's test runner (node --test)."""
