"""Object storage through fsspec (s3fs for s3://, the `s3` extra): URLs, whole-object writes,
publishing a build, mirroring a project from a bucket, and a render cache shared through one.

`urls` says what a URL is (and refuses what is not supported); `remote` opens a
filesystem and turns its errors into clear ones with no credentials in them;
`publish`, `mirror` and `cache` build on those.
"""
