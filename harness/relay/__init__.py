"""postfix relaying outgoing mail through the provider with XOAUTH2: the relay cells.

The Cyrus SASL XOAUTH2 client plugin is built from its git source (`plugin`), postfix runs in
a container configured as `fetchmail-oauth2 example postfix` prints (`box`, `setup`), the token
refresher runs on the host like a user's cron job, and each cell is judged by what the mock
submission server received (`scenarios`).
"""
