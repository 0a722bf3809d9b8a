"""Release strategies beyond the canary, and their governance (lab 08's building blocks).

``abtest`` decides an A/B test with valid statistics (a fixed-sample two-proportion z-test whose sample size is
fixed in advance, and a mixture sequential probability ratio test that stays valid however often it is peeked
at); ``scenarios`` generates seeded A/B traffic to show (and grade) what peeking does; ``bluegreen`` runs two full
environments behind the router with a smoke-gated atomic switch and an instant switch back; ``cost`` turns the
model servers' CPU and memory counters into a cost per 1,000 predictions for each version.
"""
