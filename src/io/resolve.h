/*
 * resolve.h — where a model lives on disk (internal).
 *
 * A model is named by a local folder, or by a Hugging Face id `org/name`
 * (optionally `org/name@revision`) that is looked up in the local Hugging Face
 * cache, laid out as huggingface_hub writes it:
 *
 *   <cache>/models--org--name/refs/<revision>     text file holding a commit hash
 *   <cache>/models--org--name/snapshots/<commit>/ the files of that commit
 *
 * <cache> is $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub,
 * else ~/.cache/huggingface/hub (the huggingface_hub order). The network layer
 * (src/net) reuses these pieces to download into the same layout.
 */
#ifndef TP_IO_RESOLVE_H
#define TP_IO_RESOLVE_H

#include "core/core.h"

/* Resolves `id_or_path` to a model folder: an existing folder is used as is;
 * otherwise an id is looked up in the cache (refs/<revision or main> -> commit
 * -> snapshots/<commit>/; a revision that is itself a commit folder under
 * snapshots/ works too). *dir_out is malloc'd (tp_free()).
 * Errors: TP_ERR_NOT_FOUND (says where it looked), TP_ERR_INVALID_ARGUMENT
 * (malformed id), TP_ERR_IO (unreadable refs file), TP_ERR_OUT_OF_MEMORY. */
tp_status tp_resolve_local(const char *id_or_path, char **dir_out, tp_error *err);

/* The Hugging Face hub cache folder from the environment (it may not exist). */
tp_status tp_hf_cache_dir(char **out, tp_error *err);

/* Splits and validates "org/name[@revision]" (or a legacy "name"): parts are
 * non-empty, without "..", '\\' or control characters; at most one '/' in the
 * repo part. *repo and *revision are malloc'd; *revision is "main" when absent. */
tp_status tp_hf_parse_id(const char *id, char **repo, char **revision, tp_error *err);

/* "org/name" -> "models--org--name" (malloc'd; NULL on OOM). */
char *tp_hf_repo_folder(const char *repo);

/* True when s looks like a commit hash (40 lowercase hex digits). */
bool tp_hf_is_commit(const char *s);

#endif /* TP_IO_RESOLVE_H */
