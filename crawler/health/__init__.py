"""Health checks: targets and their conditions (``targets``, ``conditions``), checking them
(``probe``, ``certs``), reports (``report``, ``result``), watch mode with a bounded
history and a status page (``watch``, ``history``, ``server``, ``page``), and every
broken link of a site (``linkcheck``)."""
