"""The application service every face shares (REST, slash and callbacks, backstage): no FastAPI here."""
