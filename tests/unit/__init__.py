"""In one process, no sockets: services, selectors, access rules, pages through Django's test
client, settings, the contract's schema, and the patches of third-party code."""
