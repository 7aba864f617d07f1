# tracefs's kmem:kmalloc / kmem:kfree lines -> rkctl replay's trace format
# (`a ID SIZE`, `f ID`), the converter of capture-kmem.sh (and t-trace.sh
# checks rkctl import against it). Ids are numbered in order of allocation,
# so no pointer (hashed or not) is kept; a free of a pointer allocated
# before tracing started is dropped, and a kmalloc of a pointer still live
# (its kfree was lost) first frees it. Stops after `max` ops (default: no
# limit); `w` names the workload in the header comment.
#   awk -v max=4000 -v w=fs -f kmem2trace.awk trace
function field(name,   i) {
    for (i = 1; i <= NF; i++) if (index($i, name "=") == 1) return substr($i, length(name) + 2)
    return ""
}
BEGIN { if (w != "") print "# kmem:kmalloc/kmem:kfree of the rkalloc guest during the \"" w "\" workload (scripts/capture-trace)" }
/ kmalloc: / {
    p = field("ptr"); n = field("bytes_req")
    if (p == "" || p ~ /^(0x)?0+$/ || p == "(null)" || n + 0 <= 0) next
    if (p in id) { print "f " id[p]; ops++; lost++ }
    id[p] = next_id++
    print "a " id[p] " " n; ops++
}
/ kfree: / {
    p = field("ptr")
    if (!(p in id)) next
    print "f " id[p]; delete id[p]; ops++
}
max != "" && ops >= max + 0 { exit }
END { print "# " ops + 0 " ops, " lost + 0 " frees not seen" }
