"""Use cases of the ticket cache, written against the ports (Protocols) in `application.ports`."""
