"""The web console: pages for operators, served by the API's own process under /console."""
