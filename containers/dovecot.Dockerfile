# Dovecot 2.3 from Debian (bookworm), the real server of the matrix's `dovecot` cells.
# The base image fmh-base:<suite> is made offline by harness/build/images.py; the harness
# runs it on the host network with a per-cell config dir mounted at the same path.
ARG SUITE=bookworm
FROM fmh-base:${SUITE}
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8
# no service may start while packages install (there is no init in the image)
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d \
 && apt-get update \
 && apt-get install -y --no-install-recommends dovecot-imapd dovecot-pop3d \
 && rm -rf /var/lib/apt/lists/* /usr/sbin/policy-rc.d
