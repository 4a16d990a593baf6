/* paths.h - the one size of a path buffer, for every module.
 *
 * RN_PATH_MAX bounds a file or folder name (spec files, run folders, run.h5,
 * figure files) and an HDF5 object path, terminating NUL included. A longer
 * path is an error that says so, never a silent cut. Low: includes nothing,
 * so that results, spec and the rest can share it.
 */
#ifndef RN_PATHS_H
#define RN_PATHS_H

#define RN_PATH_MAX 1024

#endif
