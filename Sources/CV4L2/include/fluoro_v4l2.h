#ifndef FLUORO_V4L2_H
#define FLUORO_V4L2_H
#include <linux/videodev2.h>

/// Non-variadic wrappers over libv4l2 (whose open/ioctl are variadic, which Swift cannot call) and
/// getters for the VIDIOC_* request codes (function-like macros in the kernel header).
int fluoro_v4l2_open(const char *path, int flags);
int fluoro_v4l2_close(int fd);
int fluoro_v4l2_ioctl(int fd, unsigned long request, void *argument);

unsigned long fluoro_vidioc_querycap(void);
unsigned long fluoro_vidioc_enum_fmt(void);
unsigned long fluoro_vidioc_enum_framesizes(void);
unsigned long fluoro_vidioc_enum_frameintervals(void);
unsigned long fluoro_vidioc_g_fmt(void);
unsigned long fluoro_vidioc_s_fmt(void);
unsigned long fluoro_vidioc_s_parm(void);
unsigned long fluoro_vidioc_reqbufs(void);
unsigned long fluoro_vidioc_querybuf(void);
unsigned long fluoro_vidioc_qbuf(void);
unsigned long fluoro_vidioc_dqbuf(void);
unsigned long fluoro_vidioc_streamon(void);
unsigned long fluoro_vidioc_streamoff(void);

#endif
