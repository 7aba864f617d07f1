# tracefs's allocation events -> rkctl replay's trace format (`a ID SIZE`,
# `f ID`): the kernel's kmem:kmalloc / kmem:kfree (a block is its ptr, its
# size bytes_req) and rkalloc's rkalloc:rk_alloc / rkalloc:rk_free (a block
# is its allocator and id, its size bytes). Used by capture.sh; t-trace.sh
# checks rkctl import against it. Ids are numbered in order of allocation,
# so no pointer or id of the kernel's is kept; a free of a block allocated
# before tracing started is dropped, and an allocation of a block still
# live (its free was lost) first frees it. Stops after `max` ops (default:
# no limit); `w` names the workload, `ev` the events, in a header comment;
# with `raw` set, the lines read (up to the last one used) are copied there.
#   awk -v max=4000 -v w=fs -v ev=kmem [-v raw=FILE] -f events2trace.awk trace
function field(name,   i) {
    for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
    return ""
}
function alloc(p, n) {
    if (p in id) { print "f " id[p]; ops++; lost++ }
    id[p] = next_id++
    print "a " id[p] " " n; ops++
}
function free(p) {
    if (!(p in id)) return
    print "f " id[p]; delete id[p]; ops++
}
BEGIN { if (w != "") print "# " ev " events of the rkalloc guest during the \"" w "\" workload (scripts/capture-trace)" }
raw != "" && !/^#/ { print > raw }
/ kmalloc: / {
    p = field("ptr"); n = field("bytes_req")
    if (p == "" || p ~ /^(0x)?0+$/ || p == "(null)" || n + 0 <= 0) next
    alloc(p, n)
}
/ kfree: / { free(field("ptr")) }
/ rk_alloc: / {
    n = field("bytes")
    if (n + 0 <= 0) next
    alloc(field("allocator") ":" field("id"), n)
}
/ rk_free: / { free(field("allocator") ":" field("id")) }
max != "" && ops >= max + 0 { exit }
END { print "# " ops + 0 " ops, " lost + 0 " frees not seen" }
