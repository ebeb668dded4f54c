; The desktop app's installer for 64-bit Windows, compiled by Debian's makensis
; (scripts/windows/package.sh passes every /D below, read from tauri.conf.json merged with
; tauri.windows.conf.json: product name, version, identifier, publisher, install mode,
; languages). Installs ecrf-desktop.exe and the command line ecrf.exe, a Start menu entry and an
; uninstaller; it never touches the stores (%LOCALAPPDATA%\early-iabp-ecrf), not even when
; uninstalling. WebView2 (Windows 10/11 ship it) is not installed: a missing one is reported.
;
; Defines: PRODUCT VERSION IDENTIFIER PUBLISHER PER_MACHINE (0|1) LANGS (an .nsh with the
; MUI_LANGUAGE lines) ICON DESKTOP_EXE CLI_EXE OUTFILE

Unicode true
Target amd64-unicode
SetCompressor /SOLID lzma

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "x64.nsh"

Name "${PRODUCT}"
OutFile "${OUTFILE}"
!if ${PER_MACHINE} == 1
  RequestExecutionLevel admin
  InstallDir "$PROGRAMFILES64\${PRODUCT}"
  !define REG_ROOT HKLM
!else
  RequestExecutionLevel user
  InstallDir "$LOCALAPPDATA\Programs\${PRODUCT}"
  !define REG_ROOT HKCU
!endif
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\${IDENTIFIER}"
InstallDirRegKey ${REG_ROOT} "${UNINSTALL_KEY}" "InstallLocation"

VIProductVersion "${VERSION}.0"
VIAddVersionKey /LANG=0 "ProductName" "${PRODUCT}"
VIAddVersionKey /LANG=0 "FileVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "ProductVersion" "${VERSION}"
VIAddVersionKey /LANG=0 "CompanyName" "${PUBLISHER}"
VIAddVersionKey /LANG=0 "FileDescription" "${PRODUCT} installer"
VIAddVersionKey /LANG=0 "LegalCopyright" "${PUBLISHER}"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_FINISHPAGE_RUN "$INSTDIR\ecrf-desktop.exe"

!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH
!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES
!include "${LANGS}"

Function .onInit
  ${IfNot} ${RunningX64}
    MessageBox MB_ICONSTOP "${PRODUCT} needs 64-bit Windows." /SD IDOK
    Abort
  ${EndIf}
  SetRegView 64
FunctionEnd

Function un.onInit
  SetRegView 64
FunctionEnd

; The Evergreen WebView2 Runtime registers its version (pv) under EdgeUpdate, machine-wide or
; per user.
Function CheckWebView2
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    ReadRegStr $0 HKCU "Software\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ${EndIf}
  ${If} $0 == ""
  ${OrIf} $0 == "0.0.0.0"
    MessageBox MB_ICONEXCLAMATION "The Microsoft Edge WebView2 Runtime was not found. ${PRODUCT} needs it to open its window: ask IT to install it (the command line ecrf.exe works without it)." /SD IDOK
  ${EndIf}
FunctionEnd

Section "Install"
  SetOutPath "$INSTDIR"
  File "/oname=ecrf-desktop.exe" "${DESKTOP_EXE}"
  File "/oname=ecrf.exe" "${CLI_EXE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"

  CreateDirectory "$SMPROGRAMS\${PRODUCT}"
  CreateShortcut "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk" "$INSTDIR\ecrf-desktop.exe"

  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "DisplayName" "${PRODUCT}"
  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "DisplayIcon" "$INSTDIR\ecrf-desktop.exe"
  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr ${REG_ROOT} "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD ${REG_ROOT} "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD ${REG_ROOT} "${UNINSTALL_KEY}" "NoRepair" 1

  Call CheckWebView2
SectionEnd

Section "Uninstall"
  ; The program only: stores, key files and backups are the trial's data and stay.
  Delete "$INSTDIR\ecrf-desktop.exe"
  Delete "$INSTDIR\ecrf.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\${PRODUCT}\${PRODUCT}.lnk"
  RMDir "$SMPROGRAMS\${PRODUCT}"
  DeleteRegKey ${REG_ROOT} "${UNINSTALL_KEY}"
SectionEnd
