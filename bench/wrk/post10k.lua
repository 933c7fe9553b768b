-- wrk script for the echo10k workload: POST a 10 KB body (10,240 bytes of "a").
wrk.method = "POST"
wrk.body = string.rep("a", 10240)
wrk.headers["Content-Type"] = "text/plain"
