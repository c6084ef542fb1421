{
  "targets": [
    {
      "target_name": "dosna_native",
      "sources": ["module.c", "strided.c", "gaussian.c", "malloc.c", "external-memory.c", "exchange.c", "shared-pool.c", "file-io.c", "commit-file.c", "folder-flags.c", "copy-after.c", "templated-files.c", "open-files.c"],
      "libraries": ["-ldl", "-lpthread", "-lm"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-fast-math"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-ffp-contract=off"] }
    }
  ]
}
