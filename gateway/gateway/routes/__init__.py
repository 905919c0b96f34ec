"""One module per area of the API; each is a mixin of the single GatewayService (one HTTP server)."""
