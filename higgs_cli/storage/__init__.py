"""Object storage through fsspec (s3fs for s3://, the `s3` extra): URLs, whole-object reads and
writes under a prefix, and single files named by a path or a URL.

`urls` says what a URL is (and refuses what is not supported); `remote` opens a
filesystem and turns its errors into clear ones with no credentials in them;
`objects` reads, writes, lists and deletes under a prefix; `files` gives a local
copy of one file (a voice recording, a transcript). This package knows nothing of
projects and imports no workstation module: a project or build on a bucket
(publish, mirror, shared cache, place) is `higgs_cli.project.folder`'s.
"""
