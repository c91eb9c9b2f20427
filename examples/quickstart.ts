// The quickstart: replaced by the full demonstration when the HTTP client layer lands.
process.stdout.write("effect-revault-auth: quickstart arrives with the HTTP client layer\n")
