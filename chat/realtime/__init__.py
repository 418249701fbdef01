"""The sockets and the async machinery behind them: fan-out, publishing, presence, limits."""
