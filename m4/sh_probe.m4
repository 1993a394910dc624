# SH_PROBE_CFLAGS(VARIABLE, FLAGS)
# Append to VARIABLE each flag of FLAGS that the C compiler accepts without a
# warning (probed with -Werror, so that an unknown -W flag is not kept).
AC_DEFUN([SH_PROBE_CFLAGS], [
  for sh_flag in $2; do
    AS_VAR_PUSHDEF([sh_cache], [sh_cv_cflag_$sh_flag])
    AC_CACHE_CHECK([whether $CC accepts $sh_flag], [sh_cache], [
      sh_save_CFLAGS="$CFLAGS"
      sh_save_LDFLAGS="$LDFLAGS"
      CFLAGS="$CFLAGS -Werror $sh_flag"
      LDFLAGS="$LDFLAGS $sh_flag"
      AC_LINK_IFELSE([AC_LANG_PROGRAM([[]], [[return 0;]])],
        [AS_VAR_SET([sh_cache], [yes])], [AS_VAR_SET([sh_cache], [no])])
      CFLAGS="$sh_save_CFLAGS"
      LDFLAGS="$sh_save_LDFLAGS"
    ])
    AS_VAR_IF([sh_cache], [yes], [$1="$$1 $sh_flag"])
    AS_VAR_POPDEF([sh_cache])
  done
])
