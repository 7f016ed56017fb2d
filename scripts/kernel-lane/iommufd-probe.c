/*
 * iommufd-probe: asks a running kernel the type1 questions of issue 14 and
 * prints its real answers, once through type1's container (/dev/vfio/vfio)
 * and once through iommufd's compatibility layer (/dev/iommu passed to
 * VFIO_GROUP_SET_CONTAINER), each under VFIO_TYPE1v2_IOMMU and
 * VFIO_TYPE1_IOMMU. Every case runs in a forked child with a container of
 * its own (fresh accounting; the child's exit releases everything).
 *
 * Build (host):  gcc -static -O1 -Wall -o iommufd-probe iommufd-probe.c
 * Run:           scripts/kernel-lane/probe-iommufd.sh (boots the lane's
 *                6.12-iommufd config with this as the payload)
 *
 * Output: one line per question,
 *   FACT <container> <iommu> <case>: <request> => <answer>
 * container: type1 | iommufd; iommu: v2 | v1 | - (before SET_IOMMU).
 * Environment (from the lane's guest): VFIO_GROUP, VFIO_DEVICE,
 * VFIO_IVSHMEM_BAR, VFIO_GROUPS/VFIO_DEVICES (the ivshmem group is the last).
 * Exit status: 0 when every case ran (whatever the kernel answered), 1 when
 * setup failed somewhere (the line says which).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/vfio.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define KiB 1024ULL
#define MiB (1024ULL * KiB)

static const char *kind;   /* "type1" or "iommufd" */
static const char *iommu;  /* "v2", "v1", "-" */
static int failures;

static void fact(const char *cse, const char *fmt, ...)
{
	va_list ap;
	printf("FACT %s %s %s: ", kind, iommu, cse);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static const char *ename(int e)
{
	switch (e) {
	case 0: return "ok";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case EACCES: return "EACCES";
	case ENOTTY: return "ENOTTY";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EDEADLK: return "EDEADLK";
	case ENXIO: return "ENXIO";
	case E2BIG: return "E2BIG";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "errno%d", e);
		return buf;
	}
	}
}

/* ---- plumbing ---------------------------------------------------------- */

static int cfd = -1, gfd = -1, dfd = -1;
static const char *group_override, *device_override;

/* The N-th (0-based) word of an environment variable, or NULL. */
static const char *env_word(const char *var, int n)
{
	const char *v = getenv(var);
	static char out[4][128];
	static int slot;
	if (!v)
		return NULL;
	for (int i = 0; *v; i++) {
		while (*v == ' ')
			v++;
		size_t len = strcspn(v, " ");
		if (i == n && len) {
			char *o = out[slot++ % 4];
			snprintf(o, 128, "%.*s", (int)len, v);
			return o;
		}
		v += len;
	}
	return NULL;
}

static const char *status_field(const char *name, char *out, size_t n)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	snprintf(out, n, "?");
	if (!f)
		return out;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, name, strlen(name)) && line[strlen(name)] == ':') {
			char *p = line + strlen(name) + 1;
			while (*p == ' ' || *p == '\t')
				p++;
			p[strcspn(p, "\n")] = 0;
			snprintf(out, n, "%s", p);
		}
	}
	fclose(f);
	return out;
}

static const char *accounting(void)
{
	static char buf[128];
	char a[40], b[40];
	snprintf(buf, sizeof buf, "VmLck=%s VmPin=%s",
		 status_field("VmLck", a, sizeof a), status_field("VmPin", b, sizeof b));
	return buf;
}

/* "ANSWER; VmLck=... VmPin=..." read after the operation (an argument
 * list would leave the order of evaluation to the compiler). */
static const char *and_accounting(const char *answer)
{
	static char buf[256];
	char a[128];
	snprintf(a, sizeof a, "%s", answer);
	snprintf(buf, sizeof buf, "%s; %s", a, accounting());
	return buf;
}

static int ext(unsigned long e)
{
	int r = ioctl(cfd, VFIO_CHECK_EXTENSION, e);
	return r < 0 ? -errno : r;
}

static void extensions(const char *when)
{
	static const struct { const char *n; unsigned long v; } ex[] = {
		{ "type1", VFIO_TYPE1_IOMMU }, { "type1v2", VFIO_TYPE1v2_IOMMU },
		{ "dma-cc", VFIO_DMA_CC_IOMMU }, { "nesting", VFIO_TYPE1_NESTING_IOMMU },
		{ "unmap-all", VFIO_UNMAP_ALL }, { "update-vaddr", VFIO_UPDATE_VADDR },
		{ "noiommu", VFIO_NOIOMMU_IOMMU },
	};
	char buf[512] = "";
	for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
		int r = ext(ex[i].v);
		char one[64];
		if (r < 0)
			snprintf(one, sizeof one, "%s%s=%s", i ? " " : "", ex[i].n, ename(-r));
		else
			snprintf(one, sizeof one, "%s%s=%d", i ? " " : "", ex[i].n, r);
		strcat(buf, one);
	}
	char c[64];
	snprintf(c, sizeof c, "check-extension %s", when);
	fact(c, "VFIO_CHECK_EXTENSION each => %s", buf);
}

static void get_info(const char *when)
{
	struct vfio_iommu_type1_info min = { .argsz = 16 };
	char c[64];
	snprintf(c, sizeof c, "get-info %s", when);
	if (ioctl(cfd, VFIO_IOMMU_GET_INFO, &min) < 0) {
		fact(c, "GET_INFO argsz=16 => %s", ename(errno));
		return;
	}
	fact(c, "GET_INFO argsz=16 => ok argsz=%u flags=%#x pgsizes=%#llx",
	     min.argsz, min.flags, (unsigned long long)min.iova_pgsizes);
	uint32_t need = min.argsz < sizeof min ? sizeof min : min.argsz;
	unsigned char *buf = calloc(1, need + 64);
	struct vfio_iommu_type1_info *info = (void *)buf;
	info->argsz = need;
	if (ioctl(cfd, VFIO_IOMMU_GET_INFO, info) < 0) {
		fact(c, "GET_INFO argsz=%u => %s", need, ename(errno));
		free(buf);
		return;
	}
	fact(c, "GET_INFO argsz=%u => ok argsz=%u flags=%#x pgsizes=%#llx cap_offset=%u",
	     need, info->argsz, info->flags, (unsigned long long)info->iova_pgsizes,
	     info->cap_offset);
	uint32_t off = (info->flags & VFIO_IOMMU_INFO_CAPS) ? info->cap_offset : 0;
	int guard = 0;
	while (off && off + sizeof(struct vfio_info_cap_header) <= need && guard++ < 16) {
		struct vfio_info_cap_header *h = (void *)(buf + off);
		char what[512] = "";
		if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE) {
			struct vfio_iommu_type1_info_cap_iova_range *r = (void *)h;
			int n = snprintf(what, sizeof what, "iova-range nr=%u size=%zu", r->nr_iovas,
					 sizeof(*r) + r->nr_iovas * sizeof(r->iova_ranges[0]));
			for (uint32_t i = 0; i < r->nr_iovas && n < (int)sizeof what - 48; i++)
				n += snprintf(what + n, sizeof what - n, " [%#llx-%#llx]",
					      (unsigned long long)r->iova_ranges[i].start,
					      (unsigned long long)r->iova_ranges[i].end);
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL) {
			struct vfio_iommu_type1_info_dma_avail *d = (void *)h;
			snprintf(what, sizeof what, "dma-avail avail=%u size=%zu", d->avail, sizeof(*d));
		} else if (h->id == VFIO_IOMMU_TYPE1_INFO_CAP_MIGRATION) {
			struct vfio_iommu_type1_info_cap_migration *m = (void *)h;
			snprintf(what, sizeof what, "migration flags=%#x pgsize_bitmap=%#llx max_dirty_bitmap_size=%#llx size=%zu",
				 m->flags, (unsigned long long)m->pgsize_bitmap,
				 (unsigned long long)m->max_dirty_bitmap_size, sizeof(*m));
		} else {
			snprintf(what, sizeof what, "unknown");
		}
		fact(c, "capability at offset %u: id=%u version=%u next=%u %s",
		     off, h->id, h->version, h->next, what);
		off = h->next;
	}
	free(buf);
}

static int map(uint64_t iova, void *vaddr, uint64_t size, uint32_t flags)
{
	struct vfio_iommu_type1_dma_map m = {
		.argsz = sizeof m, .flags = flags, .vaddr = (uintptr_t)vaddr, .iova = iova, .size = size,
	};
	return ioctl(cfd, VFIO_IOMMU_MAP_DMA, &m) < 0 ? errno : 0;
}

#define RW (VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE)

/* Answer of an unmap as "ok size=N" or "ERRNO size=N" (the size field as
 * the kernel left it; the request's own size when untouched). */
static const char *unmap(uint64_t iova, uint64_t size, uint32_t flags)
{
	static char buf[96];
	struct vfio_iommu_type1_dma_unmap u = { .argsz = sizeof u, .flags = flags, .iova = iova, .size = size };
	int e = ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, &u) < 0 ? errno : 0;
	snprintf(buf, sizeof buf, "%s size=%#llx", ename(e), (unsigned long long)u.size);
	return buf;
}

static void *anon(uint64_t size)
{
	void *p = mmap(NULL, size + 2 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("mmap");
		exit(1);
	}
	/* 2 MiB aligned, touched. */
	uintptr_t a = ((uintptr_t)p + 2 * MiB - 1) & ~(uintptr_t)(2 * MiB - 1);
	memset((void *)a, 1, size);
	return (void *)a;
}

/* Open the container of this kind, attach the group, SET_IOMMU, open the
 * device; with report, say what each step answered. */
static int setup_container(unsigned long type, int report, int open_device)
{
	const char *group = group_override ? group_override : getenv("VFIO_GROUP");
	const char *dev = device_override ? device_override : getenv("VFIO_DEVICE");
	if (!group || !dev) {
		fprintf(stderr, "no VFIO_GROUP/VFIO_DEVICE in the environment\n");
		return -1;
	}
	const char *node = strcmp(kind, "iommufd") ? "/dev/vfio/vfio" : "/dev/iommu";
	cfd = open(node, O_RDWR | O_CLOEXEC);
	if (cfd < 0) {
		fact("open", "open %s => %s", node, ename(errno));
		return -1;
	}
	if (report) {
		int r = ioctl(cfd, VFIO_GET_API_VERSION);
		if (r < 0)
			fact("api-version", "VFIO_GET_API_VERSION on %s => %s", node, ename(errno));
		else
			fact("api-version", "VFIO_GET_API_VERSION on %s => %d", node, r);
		extensions("before-set-container");
	}
	gfd = open(group, O_RDWR | O_CLOEXEC);
	if (gfd < 0) {
		fact("open", "open %s => %s", group, ename(errno));
		return -1;
	}
	if (ioctl(gfd, VFIO_GROUP_SET_CONTAINER, &cfd) < 0) {
		fact("set-container", "VFIO_GROUP_SET_CONTAINER(%s fd) => %s", node, ename(errno));
		return -1;
	}
	if (report) {
		extensions("after-set-container");
		get_info("before-set-iommu");
	}
	if (ioctl(cfd, VFIO_SET_IOMMU, type) < 0) {
		fact("set-iommu", "VFIO_SET_IOMMU(%lu) => %s", type, ename(errno));
		return -1;
	}
	if (report) {
		fact("set-iommu", "VFIO_SET_IOMMU(%lu) => ok", type);
		extensions("after-set-iommu");
		get_info("after-set-iommu");
	}
	if (open_device) {
		dfd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, dev);
		if (dfd < 0) {
			fact("device", "VFIO_GROUP_GET_DEVICE_FD(%s) => %s", dev, ename(errno));
			return -1;
		}
		if (report) {
			fact("device", "VFIO_GROUP_GET_DEVICE_FD(%s) => ok", dev);
			extensions("after-device-open");
			get_info("after-device-open");
		}
	}
	return 0;
}

/* ---- the cases ---------------------------------------------------------- */

static void case_setup(unsigned long type)
{
	if (setup_container(type, 1, 1) < 0)
		exit(2);
}

static void case_no_device(unsigned long type)
{
	if (setup_container(type, 0, 0) < 0)
		exit(2);
	void *buf = anon(4 * MiB);
	fact("no-device map", "MAP iova=0x200000 size=2M rw (group attached, no device fd open) => %s",
	     and_accounting(ename(map(0x200000, buf, 2 * MiB, RW))));
	get_info("no-device-after-map");
	fact("no-device map", "MAP iova=0x8000000000 size=2M rw (outside the VT-d aperture, no device) => %s",
	     ename(map(0x8000000000ULL, buf, 2 * MiB, RW)));
	fact("no-device map", "MAP iova=0xfee00000 size=1M rw (MSI window, no device) => %s",
	     ename(map(0xfee00000ULL, buf, 1 * MiB, RW)));
	dfd = ioctl(gfd, VFIO_GROUP_GET_DEVICE_FD, getenv("VFIO_DEVICE"));
	fact("no-device map", "then VFIO_GROUP_GET_DEVICE_FD => %s", dfd < 0 ? ename(errno) : "ok");
	get_info("no-device-after-device-open");
}

static void case_unmap(unsigned long type)
{
	if (setup_container(type, 0, 1) < 0)
		exit(2);
	uint8_t *buf = anon(8 * MiB);
	char before[128];
	snprintf(before, sizeof before, "%s", accounting());

	int e = map(0x200000, buf, 2 * MiB, RW);
	fact("map", "MAP iova=0x200000 size=2M rw => %s (before: %s)", and_accounting(ename(e)), before);
	fact("map-overlap", "MAP iova=0x200000 size=2M again (same range) => %s",
	     ename(map(0x200000, buf + 2 * MiB, 2 * MiB, RW)));
	fact("map-overlap", "MAP iova=0x300000 size=2M (overlaps the second half) => %s",
	     ename(map(0x300000, buf + 2 * MiB, 2 * MiB, RW)));
	fact("map-overlap", "MAP iova=0x100000 size=2M (overlaps the first half) => %s",
	     ename(map(0x100000, buf + 2 * MiB, 2 * MiB, RW)));

	fact("unmap-cut", "UNMAP iova=0x200000 size=1M (first half of the 2M mapping) => %s", unmap(0x200000, 1 * MiB, 0));
	fact("unmap-cut", "UNMAP iova=0x300000 size=1M (second half) => %s", unmap(0x300000, 1 * MiB, 0));
	fact("unmap-cut", "UNMAP iova=0x280000 size=4K (inside) => %s", unmap(0x280000, 4 * KiB, 0));
	fact("unmap-cut", "UNMAP iova=0x100000 size=2M (covers the first half only) => %s", unmap(0x100000, 2 * MiB, 0));
	fact("unmap-cut", "after the cuts: %s", accounting());
	fact("unmap-cut", "UNMAP iova=0x200000 size=2M (whole mapping) => %s", and_accounting(unmap(0x200000, 2 * MiB, 0)));

	fact("unmap-empty", "UNMAP iova=0x40000000 size=2M (nothing mapped there) => %s", unmap(0x40000000, 2 * MiB, 0));
	fact("unmap-empty", "UNMAP iova=0x200000 size=2M (just unmapped) => %s", unmap(0x200000, 2 * MiB, 0));

	fact("size0", "UNMAP iova=0x200000 size=0 => %s", unmap(0x200000, 0, 0));
	fact("size0", "MAP iova=0x200000 size=0 => %s", ename(map(0x200000, buf, 0, RW)));

	fact("wrap", "UNMAP iova=0xfffffffffffff000 size=0x2000 (wraps) => %s", unmap(0xfffffffffffff000ULL, 0x2000, 0));
	fact("wrap", "MAP iova=0xfffffffffffff000 size=0x2000 (wraps) => %s", ename(map(0xfffffffffffff000ULL, buf, 0x2000, RW)));
	fact("top", "UNMAP iova=0xfffffffffffff000 size=0x1000 (ends at 2^64-1) => %s", unmap(0xfffffffffffff000ULL, 0x1000, 0));
	fact("top", "MAP iova=0xfffffffffffff000 size=0x1000 (ends at 2^64-1) => %s", ename(map(0xfffffffffffff000ULL, buf, 0x1000, RW)));
	fact("top", "UNMAP iova=0 size=0x8000000000000000 (half the space) => %s", unmap(0, 0x8000000000000000ULL, 0));

	/* Non-atomic unmap: three 1M mappings, then an unmap ending inside the third. */
	int a = map(0x1000000, buf, 1 * MiB, RW), b = map(0x1100000, buf + 1 * MiB, 1 * MiB, RW),
	    c = map(0x1200000, buf + 2 * MiB, 1 * MiB, RW);
	fact("non-atomic", "MAP 3 x 1M at 0x1000000, 0x1100000, 0x1200000 => %s %s %s", ename(a), ename(b), and_accounting(ename(c)));
	fact("non-atomic", "UNMAP iova=0x1000000 size=0x280000 (ends inside the third) => %s",
	     and_accounting(unmap(0x1000000, 0x280000, 0)));
	fact("non-atomic", "UNMAP iova=0x1000000 size=1M (the first again) => %s", unmap(0x1000000, 1 * MiB, 0));
	fact("non-atomic", "UNMAP iova=0x1200000 size=1M (the third) => %s", unmap(0x1200000, 1 * MiB, 0));
	/* Starting inside the first mapping. */
	a = map(0x1000000, buf, 1 * MiB, RW); b = map(0x1100000, buf + 1 * MiB, 1 * MiB, RW);
	fact("non-atomic", "UNMAP iova=0x1080000 size=0x180000 (starts inside the first of two) => %s", unmap(0x1080000, 0x180000, 0));
	fact("unmap-all", "UNMAP flags=ALL iova=0 size=0 => %s", and_accounting(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL)));
	fact("unmap-all", "UNMAP flags=ALL (empty) => %s", unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL));
	fact("unmap-all", "UNMAP flags=ALL iova=0 size=4K => %s", unmap(0, 4096, VFIO_DMA_UNMAP_FLAG_ALL));

	/* Flags. */
	map(0x200000, buf, 2 * MiB, RW);
	fact("map-flags", "MAP flags=0 (no READ/WRITE) iova=0x600000 size=2M => %s", ename(map(0x600000, buf + 2 * MiB, 2 * MiB, 0)));
	fact("map-flags", "MAP flags=READ iova=0x800000 size=2M => %s", ename(map(0x800000, buf + 2 * MiB, 2 * MiB, VFIO_DMA_MAP_FLAG_READ)));
	fact("map-flags", "MAP flags=rw|VADDR (1<<2) iova=0x200000 size=2M => %s", ename(map(0x200000, buf, 2 * MiB, RW | VFIO_DMA_MAP_FLAG_VADDR)));
	fact("map-flags", "MAP flags=rw|(1<<3) iova=0xa00000 size=2M => %s", ename(map(0xa00000, buf + 4 * MiB, 2 * MiB, RW | (1u << 3))));
	fact("unmap-flags", "UNMAP flags=VADDR iova=0x200000 size=2M => %s", unmap(0x200000, 2 * MiB, VFIO_DMA_UNMAP_FLAG_VADDR));
	{
		uint64_t bitmap[8] = { 0 };
		unsigned char raw[sizeof(struct vfio_iommu_type1_dma_unmap) + sizeof(struct vfio_bitmap)];
		struct vfio_iommu_type1_dma_unmap *u = (void *)raw;
		struct vfio_bitmap *bm = (void *)u->data;
		memset(raw, 0, sizeof raw);
		u->argsz = sizeof raw;
		u->flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
		u->iova = 0x200000;
		u->size = 2 * MiB;
		bm->pgsize = 4096;
		bm->size = sizeof bitmap;
		bm->data = (__u64 *)bitmap;
		int r = ioctl(cfd, VFIO_IOMMU_UNMAP_DMA, raw) < 0 ? errno : 0;
		fact("unmap-flags", "UNMAP flags=GET_DIRTY_BITMAP pgsize=4K iova=0x200000 size=2M => %s size=%#llx",
		     ename(r), (unsigned long long)u->size);
	}
	fact("unmap-flags", "UNMAP flags=VADDR|ALL iova=0 size=0 => %s", unmap(0, 0, VFIO_DMA_UNMAP_FLAG_VADDR | VFIO_DMA_UNMAP_FLAG_ALL));
	fact("unmap-flags", "UNMAP flags=(1<<3) iova=0x200000 size=2M => %s", unmap(0x200000, 2 * MiB, 1u << 3));
	{
		struct vfio_iommu_type1_dirty_bitmap d = { .argsz = sizeof d, .flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_START };
		int r = ioctl(cfd, VFIO_IOMMU_DIRTY_PAGES, &d) < 0 ? errno : 0;
		fact("dirty", "VFIO_IOMMU_DIRTY_PAGES flags=START => %s", ename(r));
		d.flags = VFIO_IOMMU_DIRTY_PAGES_FLAG_STOP;
		r = ioctl(cfd, VFIO_IOMMU_DIRTY_PAGES, &d) < 0 ? errno : 0;
		fact("dirty", "VFIO_IOMMU_DIRTY_PAGES flags=STOP => %s", ename(r));
	}
	unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL);

	/* Aperture, reserved regions, alignment. */
	fact("aperture", "MAP iova=0x8000000000 size=2M (past the 39-bit VT-d aperture) => %s", ename(map(0x8000000000ULL, buf, 2 * MiB, RW)));
	fact("aperture", "MAP iova=0x7fffe00000 size=4M (crosses the aperture's end) => %s", ename(map(0x7fffe00000ULL, buf, 4 * MiB, RW)));
	fact("reserved", "MAP iova=0xfee00000 size=1M (the MSI window) => %s", ename(map(0xfee00000ULL, buf, 1 * MiB, RW)));
	fact("reserved", "MAP iova=0xfed00000 size=2M (ends inside the MSI window) => %s", ename(map(0xfed00000ULL, buf, 2 * MiB, RW)));
	fact("align", "MAP iova=0x200800 size=4K (iova not page aligned) => %s", ename(map(0x200800, buf, 4 * KiB, RW)));
	fact("align", "MAP iova=0x200000 vaddr+0x800 size=4K (vaddr not page aligned) => %s", ename(map(0x200000, buf + 0x800, 4 * KiB, RW)));
	fact("align", "MAP iova=0x200000 size=0x1800 (size not page aligned) => %s", ename(map(0x200000, buf, 0x1800, RW)));
	fact("align", "MAP iova=0x200800 vaddr+0x800 size=4K (same sub-page offset) => %s", ename(map(0x200800, buf + 0x800, 4 * KiB, RW)));
	fact("align", "UNMAP iova=0x200800 size=4K (not aligned) => %s", unmap(0x200800, 4 * KiB, 0));
	fact("align", "UNMAP-ALL after alignment cases => %s", unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL));
	fact("vaddr", "MAP iova=0x200000 vaddr=0 (unmapped memory) size=4K => %s", ename(map(0x200000, NULL, 4 * KiB, RW)));
	get_info("end-of-unmap-case");
}

/* v1: cuts inside a mapping. */
static void case_v1_split(unsigned long type)
{
	if (setup_container(type, 0, 1) < 0)
		exit(2);
	uint8_t *buf = anon(4 * MiB);
	fact("v1-split", "MAP iova=0x200000 size=2M rw => %s", and_accounting(ename(map(0x200000, buf, 2 * MiB, RW))));
	fact("v1-split", "UNMAP iova=0x280000 size=4K (inside) => %s", and_accounting(unmap(0x280000, 4 * KiB, 0)));
	fact("v1-split", "UNMAP iova=0x200000 size=4K (first page) => %s", and_accounting(unmap(0x200000, 4 * KiB, 0)));
	fact("v1-split", "UNMAP iova=0x300000 size=1M (last half) => %s", and_accounting(unmap(0x300000, 1 * MiB, 0)));
	fact("v1-split", "UNMAP iova=0x200000 size=2M (what is left) => %s", and_accounting(unmap(0x200000, 2 * MiB, 0)));
	fact("v1-split", "UNMAP-ALL => %s", and_accounting(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL)));
}

static int drop_ipc_lock(void)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	d[CAP_IPC_LOCK / 32].effective &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].permitted &= ~(1u << (CAP_IPC_LOCK % 32));
	d[CAP_IPC_LOCK / 32].inheritable &= ~(1u << (CAP_IPC_LOCK % 32));
	return syscall(SYS_capset, &h, d) < 0 ? -1 : 0;
}

static void case_memlock(unsigned long type, int with_cap)
{
	if (!with_cap && drop_ipc_lock() < 0) {
		fact("memlock", "capset (drop CAP_IPC_LOCK) => %s", ename(errno));
		exit(2);
	}
	struct rlimit rl = { 3 * MiB, 3 * MiB };
	setrlimit(RLIMIT_MEMLOCK, &rl);
	if (setup_container(type, 0, 1) < 0)
		exit(2);
	uint8_t *buf = anon(8 * MiB);
	const char *cap = with_cap ? "with CAP_IPC_LOCK" : "without CAP_IPC_LOCK";
	fact("memlock", "%s, RLIMIT_MEMLOCK=3M: MAP iova=0x200000 size=2M => %s", cap, and_accounting(ename(map(0x200000, buf, 2 * MiB, RW))));
	fact("memlock", "%s: MAP iova=0x400000 size=2M (4M in all) => %s", cap, and_accounting(ename(map(0x400000, buf + 2 * MiB, 2 * MiB, RW))));
	fact("memlock", "%s: MAP iova=0x600000 of the same pages as 0x200000 size=2M => %s", cap, and_accounting(ename(map(0x600000, buf, 2 * MiB, RW))));
	fact("memlock", "%s: UNMAP-ALL => %s", cap, and_accounting(unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL)));
}

static void case_entry_limit(unsigned long type)
{
	const char *p = "/sys/module/vfio_iommu_type1/parameters/dma_entry_limit";
	char old[32] = "";
	FILE *f = fopen(p, "r");
	if (!f || !fgets(old, sizeof old, f)) {
		fact("dma-entry-limit", "read %s => %s", p, ename(errno));
		exit(2);
	}
	fclose(f);
	old[strcspn(old, "\n")] = 0;
	f = fopen(p, "w");
	if (!f || fprintf(f, "2\n") < 0 || fclose(f) != 0) {
		fact("dma-entry-limit", "write 2 to %s failed", p);
		exit(2);
	}
	if (setup_container(type, 0, 1) == 0) {
		uint8_t *buf = anon(4 * MiB);
		int r[4];
		for (int i = 0; i < 4; i++)
			r[i] = map(0x200000 + i * 0x100000ULL, buf + i * MiB, 1 * MiB, RW);
		fact("dma-entry-limit", "dma_entry_limit=2 (was %s): MAP 4 x 1M => %s %s %s %s", old,
		     ename(r[0]), ename(r[1]), ename(r[2]), ename(r[3]));
		get_info("dma_entry_limit=2");
		unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL);
	}
	f = fopen(p, "w");
	if (!f || fprintf(f, "%s\n", old) < 0 || fclose(f) != 0)
		fact("dma-entry-limit", "restoring %s failed", p);
}

static void case_pfnmap(unsigned long type)
{
	const char *bar = getenv("VFIO_IVSHMEM_BAR");
	if (!bar) {
		fact("pfnmap", "no VFIO_IVSHMEM_BAR");
		return;
	}
	/* The BAR's device is bound to vfio-pci; the sysfs resource file maps it. */
	int fd = open(bar, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fact("pfnmap", "open %s => %s", bar, ename(errno));
		return;
	}
	void *p = mmap(NULL, 2 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fact("pfnmap", "mmap %s => %s", bar, ename(errno));
		return;
	}
	((volatile char *)p)[0] = 1;
	if (setup_container(type, 0, 1) < 0)
		exit(2);
	fact("pfnmap", "MAP iova=0x200000 size=2M of the ivshmem BAR mmap (sysfs resource2, VM_PFNMAP) => %s",
	     and_accounting(ename(map(0x200000, p, 2 * MiB, RW))));
	fact("pfnmap", "UNMAP-ALL => %s", unmap(0, 0, VFIO_DMA_UNMAP_FLAG_ALL));
}

static void run(const char *k, const char *v, unsigned long type, void (*fn)(unsigned long), const char *name)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		kind = k;
		iommu = v;
		fn(type);
		fflush(stdout);
		_exit(0);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		printf("PROBE %s %s %s: child ended with status %#x\n", k, v, name, st);
		failures++;
	}
}

/* Two processes of one user, each with a container of its own (two
 * groups), without CAP_IPC_LOCK and RLIMIT_MEMLOCK=3M: per-process
 * accounting lets both map 2M, per-user accounting refuses the second. */
static void case_per_user(unsigned long type)
{
	const char *g2 = env_word("VFIO_GROUPS", 1), *d2 = env_word("VFIO_DEVICES", 1);
	if (!g2 || !d2) {
		fact("per-user", "no second group in VFIO_GROUPS/VFIO_DEVICES");
		exit(2);
	}
	if (drop_ipc_lock() < 0) {
		fact("per-user", "capset (drop CAP_IPC_LOCK) => %s", ename(errno));
		exit(2);
	}
	struct rlimit rl = { 3 * MiB, 3 * MiB };
	setrlimit(RLIMIT_MEMLOCK, &rl);
	int up[2], down[2];
	if (pipe(up) < 0 || pipe(down) < 0)
		exit(2);
	pid_t h = fork();
	if (h == 0) {
		char msg[256];
		group_override = g2;
		device_override = d2;
		if (setup_container(type, 0, 1) < 0)
			_exit(2);
		uint8_t *b = anon(2 * MiB);
		snprintf(msg, sizeof msg, "%s", and_accounting(ename(map(0x200000, b, 2 * MiB, RW))));
		if (write(up[1], msg, strlen(msg) + 1) < 0)
			_exit(2);
		char c;
		if (read(down[0], &c, 1) < 0)
			_exit(2);
		_exit(0);
	}
	char first[256] = "";
	if (read(up[0], first, sizeof first - 1) <= 0) {
		fact("per-user", "first process (group %s) gave no answer", g2);
		exit(2);
	}
	fact("per-user", "process 1 (group %s, no CAP_IPC_LOCK, RLIMIT_MEMLOCK=3M): MAP iova=0x200000 size=2M => %s", g2, first);
	if (setup_container(type, 0, 1) < 0)
		exit(2);
	uint8_t *buf = anon(2 * MiB);
	fact("per-user", "process 2 of the same user (group %s, same limits) while 1 holds its 2M: MAP iova=0x200000 size=2M => %s",
	     getenv("VFIO_GROUP"), and_accounting(ename(map(0x200000, buf, 2 * MiB, RW))));
	if (write(down[1], "x", 1) < 0)
		exit(2);
	waitpid(h, NULL, 0);
	fact("per-user", "after process 1 exited: MAP iova=0x400000 size=2M (same pages, so 4M with the first) => %s",
	     and_accounting(ename(map(0x400000, buf, 2 * MiB, RW))));
}

static void memlock_cap(unsigned long t) { case_memlock(t, 1); }
static void memlock_nocap(unsigned long t) { case_memlock(t, 0); }

int main(int argc, char **argv)
{
	const char *kinds[] = { "type1", "iommufd" };
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("PROBE kernel=%s\n", getenv("VFIO_KERNEL_RELEASE") ? getenv("VFIO_KERNEL_RELEASE") : "?");
	for (int i = 0; i < 2; i++) {
		const char *k = kinds[i];
		if (argc > 1 && strcmp(argv[1], k))
			continue;
		for (int v = 0; v < 2; v++) {
			unsigned long t = v ? VFIO_TYPE1_IOMMU : VFIO_TYPE1v2_IOMMU;
			const char *vn = v ? "v1" : "v2";
			run(k, vn, t, case_setup, "setup");
			run(k, vn, t, case_no_device, "no-device");
			run(k, vn, t, case_unmap, "unmap");
			if (v)
				run(k, vn, t, case_v1_split, "v1-split");
			else {
				run(k, vn, t, memlock_cap, "memlock");
				run(k, vn, t, memlock_nocap, "memlock-nocap");
				run(k, vn, t, case_per_user, "per-user");
				run(k, vn, t, case_entry_limit, "entry-limit");
				run(k, vn, t, case_pfnmap, "pfnmap");
			}
		}
	}
	printf("PROBE done, %d case(s) could not run\n", failures);
	return failures ? 1 : 0;
}
