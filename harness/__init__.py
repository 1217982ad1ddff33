"""Build, patch and test fetchmail 6.x with OAuth2 (XOAUTH2/OAUTHBEARER) support."""

__version__ = "0.1.0"
