#include "fluoro_v4l2.h"
#include <libv4l2.h>
#include <sys/mman.h>

int fluoro_v4l2_open(const char *path, int flags) { return v4l2_open(path, flags); }
int fluoro_v4l2_fd_open(int fd) { return v4l2_fd_open(fd, 0); }
int fluoro_v4l2_close(int fd) { return v4l2_close(fd); }
int fluoro_v4l2_ioctl(int fd, unsigned long request, void *argument) { return v4l2_ioctl(fd, request, argument); }
void *fluoro_v4l2_mmap(size_t length, int fd, int64_t offset) {
    return v4l2_mmap(NULL, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, offset);
}
int fluoro_v4l2_munmap(void *start, size_t length) { return v4l2_munmap(start, length); }

unsigned long fluoro_vidioc_querycap(void) { return VIDIOC_QUERYCAP; }
unsigned long fluoro_vidioc_enum_fmt(void) { return VIDIOC_ENUM_FMT; }
unsigned long fluoro_vidioc_enum_framesizes(void) { return VIDIOC_ENUM_FRAMESIZES; }
unsigned long fluoro_vidioc_enum_frameintervals(void) { return VIDIOC_ENUM_FRAMEINTERVALS; }
unsigned long fluoro_vidioc_g_fmt(void) { return VIDIOC_G_FMT; }
unsigned long fluoro_vidioc_s_fmt(void) { return VIDIOC_S_FMT; }
unsigned long fluoro_vidioc_g_parm(void) { return VIDIOC_G_PARM; }
unsigned long fluoro_vidioc_s_parm(void) { return VIDIOC_S_PARM; }
unsigned long fluoro_vidioc_reqbufs(void) { return VIDIOC_REQBUFS; }
unsigned long fluoro_vidioc_querybuf(void) { return VIDIOC_QUERYBUF; }
unsigned long fluoro_vidioc_qbuf(void) { return VIDIOC_QBUF; }
unsigned long fluoro_vidioc_dqbuf(void) { return VIDIOC_DQBUF; }
unsigned long fluoro_vidioc_streamon(void) { return VIDIOC_STREAMON; }
unsigned long fluoro_vidioc_streamoff(void) { return VIDIOC_STREAMOFF; }
