#ifndef FLUORO_V4L2_H
#define FLUORO_V4L2_H
#include <linux/videodev2.h>
#include <stddef.h>
#include <stdint.h>

/// Non-variadic wrappers over libv4l2 (whose open/ioctl are variadic, which Swift cannot call) and
/// getters for the VIDIOC_* request codes (function-like macros in the kernel header).
int fluoro_v4l2_open(const char *path, int flags);
/// Hands a descriptor opened with open(2) to libv4l2; returns it, or -1.
int fluoro_v4l2_fd_open(int fd);
int fluoro_v4l2_close(int fd);
int fluoro_v4l2_ioctl(int fd, unsigned long request, void *argument);
/// Maps a driver buffer (read/write, shared) at the offset VIDIOC_QUERYBUF gave; MAP_FAILED on failure.
void *fluoro_v4l2_mmap(size_t length, int fd, int64_t offset);
int fluoro_v4l2_munmap(void *start, size_t length);

unsigned long fluoro_vidioc_querycap(void);
unsigned long fluoro_vidioc_enum_fmt(void);
unsigned long fluoro_vidioc_enum_framesizes(void);
unsigned long fluoro_vidioc_enum_frameintervals(void);
unsigned long fluoro_vidioc_g_fmt(void);
unsigned long fluoro_vidioc_s_fmt(void);
unsigned long fluoro_vidioc_g_parm(void);
unsigned long fluoro_vidioc_s_parm(void);
unsigned long fluoro_vidioc_reqbufs(void);
unsigned long fluoro_vidioc_querybuf(void);
unsigned long fluoro_vidioc_qbuf(void);
unsigned long fluoro_vidioc_dqbuf(void);
unsigned long fluoro_vidioc_streamon(void);
unsigned long fluoro_vidioc_streamoff(void);

#endif
