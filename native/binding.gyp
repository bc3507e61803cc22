{
  "targets": [
    {
      "target_name": "plumb_setns",
      "sources": ["setns.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    }
  ]
}
