"""fetchmail-oauth2: obtain and refresh OAuth2 tokens for fetchmail and postfix."""

__version__ = "0.1.0"
