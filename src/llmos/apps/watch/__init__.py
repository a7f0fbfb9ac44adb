"""Opinion monitoring (F11): watches of timestamped texts (news, posts, reports) scored by
a classifier deployment, cut by topic and entity into time series, watched for spikes and
level shifts, with alerts that fire once per episode and survive a restart.

`operations` holds the system calls (`create_watch`, `ingest_watch`, ...), `detect` the
detectors (and why they were chosen), `plot` the chart. Built only on `llmos.ops`."""
