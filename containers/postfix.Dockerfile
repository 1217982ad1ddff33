# Relay image: Debian's postfix as a smarthost client, and what building the Cyrus SASL
# XOAUTH2 client plugin (moriyoshi/cyrus-sasl-xoauth2) needs. One file for every Debian suite.
# No plugin is installed here: the harness builds it from its git source and puts it in place.
# libsasl2-modules gives PLAIN/LOGIN (the password relay beside the OAuth one); sasl2-bin gives
# saslpluginviewer (checks that the built plugin registers its client mechanism).
ARG SUITE=bookworm
FROM fmh-base:${SUITE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
RUN echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections \
 && printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends \
      postfix libsasl2-modules sasl2-bin \
      build-essential autoconf automake libtool libsasl2-dev ca-certificates procps \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
WORKDIR /build
