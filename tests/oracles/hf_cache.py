"""Writes and reads the Hugging Face hub cache with huggingface_hub's own code.

usage:
  hf_cache.py write CACHE REPO_TYPE REPO_ID REVISION COMMIT FILENAME SOURCE
      lays SOURCE out as huggingface_hub's download does (file_download.py: blob named by the
      sha256 etag of an LFS file, relative symlink from snapshots/<commit>/FILENAME made by
      `_create_symlink`, `refs/<revision>` by `_cache_commit_hash_for_specific_revision`);
      prints {"path": the snapshot path, "sha256": ...}
  hf_cache.py read CACHE REPO_TYPE REPO_ID REVISION FILENAME
      prints {"download": hf_hub_download(..., local_files_only=True),
              "cached": try_to_load_from_cache(...), "sha256": of the file's content}
"""
import hashlib
import json
import os
import shutil
import sys

from huggingface_hub import hf_hub_download, try_to_load_from_cache
from huggingface_hub.file_download import (
    _cache_commit_hash_for_specific_revision,
    _create_symlink,
    _get_pointer_path,
    repo_folder_name,
)


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


command, cache, repo_type, repo_id, revision = sys.argv[1:6]
if command == "write":
    commit, filename, source = sys.argv[6:9]
    storage = os.path.join(cache, repo_folder_name(repo_id=repo_id, repo_type=repo_type))
    etag = sha256(source)
    blob = os.path.join(storage, "blobs", etag)
    os.makedirs(os.path.dirname(blob), exist_ok=True)
    shutil.copyfile(source, blob)
    pointer = _get_pointer_path(storage, commit, filename)
    os.makedirs(os.path.dirname(pointer), exist_ok=True)
    _create_symlink(blob, pointer, new_blob=False)
    if revision != commit:
        _cache_commit_hash_for_specific_revision(storage, revision, commit)
    print(json.dumps({"path": pointer, "sha256": etag}))
else:
    filename = sys.argv[6]
    args = dict(repo_id=repo_id, filename=filename, revision=revision, repo_type=repo_type, cache_dir=cache)
    download = hf_hub_download(local_files_only=True, **args)
    cached = try_to_load_from_cache(**args)
    print(json.dumps({"download": download, "cached": cached, "sha256": sha256(download)}))
