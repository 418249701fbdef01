"""The site as real server processes over real TCP: runserver, several daphne workers on
Redis, `make serve`, with workers and Redis killed and paused."""
