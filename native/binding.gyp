{
  "targets": [
    {
      "target_name": "plumb_setns",
      "sources": ["setns.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"]
    },
    {
      "target_name": "plumb",
      "type": "executable",
      "sources": ["launcher.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-std=gnu11"],
      "ldflags": ["-static", "-s"]
    }
  ]
}
